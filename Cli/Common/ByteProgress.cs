using System.Diagnostics;
using System.Globalization;

namespace Recur.Cli.Common;

/// <summary>
/// Progress of a long write: a bar redrawn in place on a terminal, a plain line every quarter otherwise
/// (logs stay readable), nothing when quiet.
/// </summary>
internal sealed class ByteProgress(CliContext context, string label)
{
    private readonly Stopwatch clock = new();
    private int lastQuarter;
    private long lastDrawTicks;

    public void Report(long done, long total)
    {
        if (total <= 0) return;
        if (!clock.IsRunning) clock.Start(); // the rate counts writing only, not graph building
        double fraction = Math.Min(1.0, (double)done / total);
        double rate = done / 1048576.0 / Math.Max(clock.Elapsed.TotalSeconds, 1e-3);
        string figures = string.Create(CultureInfo.InvariantCulture, $"{done / 1048576.0,8:F1} / {total / 1048576.0:F1} MiB  {rate,7:F1} MiB/s");
        if (context.Interactive)
        {
            // Redraw at most ~20 times a second, and always at the end.
            if (done < total && clock.ElapsedTicks - lastDrawTicks < Stopwatch.Frequency / 20) return;
            lastDrawTicks = clock.ElapsedTicks;
            int filled = (int)(fraction * 30);
            context.Err.Write($"\r{label} [{new string('#', filled)}{new string(' ', 30 - filled)}] {fraction,4:P0} {figures}");
            if (done >= total) context.Err.WriteLine();
            return;
        }
        int quarter = (int)(fraction * 4);
        if (quarter == lastQuarter) return;
        lastQuarter = quarter;
        context.Err.WriteLine($"{label} {fraction:P0} {figures}");
    }
}
