// Baseline for bench/localengine: llama.cpp's own batched generation speed,
// driven through node-llama-cpp 3.21.1 and its prebuilt CPU libraries
// (@node-llama-cpp/linux-x64@3.21.1, the same .so files the Go engine loads).
//
// For each stream count N it creates ONE context with N sequences
// (contextSize tokens per sequence, batchSize tokens per decode step, T
// threads), warms up with one short generation, then runs N concurrent
// greedy generations of exactly --tokens tokens each through the low-level
// LlamaContextSequence.evaluate() generator, so node-llama-cpp itself packs
// the N sequences into shared llama_decode() calls. One JSON line per N goes
// to stdout, in the same schema as bench/localengine; a detail line (batch
// statistics, EOG count, effective settings) goes to stderr.
//
//   node bench.mjs MODEL.gguf [--streams 1,4,8] [--threads 1] [--tokens 128]
//                  [--context 512] [--batch 512] [--flash-attention auto|on|off]
//                  [--fresh]
//
// --fresh runs each N in its own child process, so max_rss_mb is per N
// rather than the running maximum of one process.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";

// Never build from source and never download anything, whatever the env says.
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = "true";

const ENGINE = "node-llama-cpp 3.21.1";

function usage(msg) {
    if (msg) console.error(`bench.mjs: ${msg}`);
    console.error("usage: node bench.mjs MODEL.gguf [--streams 1,4,8] [--threads 1] [--tokens 128] " +
        "[--context 512] [--batch 512] [--flash-attention auto|on|off] [--fresh]");
    process.exit(2);
}

function parseArgs(argv) {
    const o = {
        model: null, streams: [1, 4, 8], threads: 1, tokens: 128, context: 512, batch: 512,
        flashAttention: "auto", fresh: false, warmupTokens: 8,
    };
    const int = (name, v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) usage(`bad ${name} ${JSON.stringify(v)}`);
        return n;
    };
    for (let i = 0; i < argv.length; i++) {
        let a = argv[i];
        let val = null;
        if (a.startsWith("--") && a.includes("=")) [a, val] = [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)];
        const next = () => val ?? (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
        switch (a) {
            case "--streams": case "-n":
                o.streams = next().split(",").map((s) => int("stream count", s.trim()));
                break;
            case "--threads": case "-t": o.threads = int("threads", next()); break;
            case "--tokens": o.tokens = int("tokens", next()); break;
            case "--context": case "--ctx": o.context = int("context", next()); break;
            case "--batch": o.batch = int("batch", next()); break;
            case "--warmup-tokens": o.warmupTokens = int("warmup tokens", next()); break;
            case "--flash-attention": {
                const v = next();
                if (!["auto", "on", "off"].includes(v)) usage(`bad --flash-attention ${v}`);
                o.flashAttention = v;
                break;
            }
            case "--fresh": o.fresh = true; break;
            case "-h": case "--help": usage();
            default:
                if (a.startsWith("-")) usage(`unknown flag ${a}`);
                if (o.model != null) usage(`unexpected argument ${a}`);
                o.model = a;
        }
    }
    if (o.model == null) usage("missing MODEL.gguf");
    return o;
}

const opts = parseArgs(process.argv.slice(2));

if (opts.fresh && opts.streams.length >= 1) {
    // One child per N; the child runs exactly one N (without --fresh).
    const self = fileURLToPath(import.meta.url);
    const base = process.argv.slice(2).filter((a, i, all) =>
        a !== "--fresh" && a !== "--streams" && a !== "-n" && !a.startsWith("--streams=") &&
        !(i > 0 && (all[i - 1] === "--streams" || all[i - 1] === "-n")));
    for (const n of opts.streams) {
        const r = spawnSync(process.execPath, [self, ...base, "--streams", String(n)], { stdio: "inherit" });
        if (r.status !== 0) process.exit(r.status ?? 1);
    }
    process.exit(0);
}

const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");

const llama = await getLlama({
    gpu: false,                 // CPU only; never probes CUDA/Vulkan/Metal
    build: "never",             // never compile llama.cpp from source
    skipDownload: true,         // never fetch llama.cpp sources
    usePrebuiltBinaries: true,  // use @node-llama-cpp/linux-x64
    progressLogs: false,
    maxThreads: opts.threads,   // thread budget of the whole Llama instance
    logLevel: LlamaLogLevel.warn,
});
const model = await llama.loadModel({ modelPath: opts.model, gpuLayers: 0 });

// Same prompt tokenization as the Go engine (llama_tokenize with
// add_special=true, parse_special=true): special tokens parsed, BOS prepended
// when the vocab asks for it.
function tokenizePrompt(text) {
    const toks = model.tokenize(text, true);
    const bos = model.tokens.bos;
    if (bos != null && model.tokens.shouldPrependBosToken && toks[0] !== bos) return [bos, ...toks];
    return toks;
}

// Generate exactly `max` tokens on `seq` from `text`, greedy. EOG tokens do
// not stop generation (yieldEogToken: true yields them and feeds them back
// like any other token); they are counted.
async function generate(seq, text, max, t0, stat) {
    const prompt = tokenizePrompt(text);
    let n = 0;
    for await (const tok of seq.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
        if (n === 0) stat.ttft = performance.now() - t0;
        n++;
        if (model.isEogToken(tok)) stat.eog++;
        if (n >= max) break; // ends the generator: the last token is sampled, not decoded
    }
    stat.tokens = n;
    stat.promptTokens = prompt.length;
}

async function run(seqs, n, max, label) {
    const stats = Array.from({ length: n }, () => ({ ttft: 0, tokens: 0, eog: 0, promptTokens: 0 }));
    const start = performance.now();
    await Promise.all(stats.map((st, i) => {
        const t0 = performance.now();
        const text = label ?? `prompt number ${i}: the quick brown fox`;
        return generate(seqs[i], text, max, t0, st);
    }));
    const seconds = (performance.now() - start) / 1000;
    return { seconds, stats };
}

for (const n of opts.streams) {
    const context = await model.createContext({
        sequences: n,
        contextSize: opts.context,  // PER SEQUENCE: n_ctx = pad256(contextSize * sequences)
        batchSize: opts.batch,      // n_batch = n_ubatch = max(batchSize, sequences)
        threads: opts.threads,      // n_threads = n_threads_batch
        flashAttention: opts.flashAttention === "auto" ? "auto" : opts.flashAttention === "on",
        failedCreationRemedy: false,
    });

    // Count llama_decode() calls and their sizes (internal hooks, diagnostics only).
    const dec = { calls: 0, tokens: 0, measuring: false };
    try {
        const ctx = context._ctx;
        const initBatch = ctx.initBatch.bind(ctx);
        // the native method is a read-only prototype property: shadow it on the instance
        Object.defineProperty(ctx, "initBatch", {
            configurable: true, writable: true,
            value: (size) => {
                if (dec.measuring) { dec.calls++; dec.tokens += size; }
                return initBatch(size);
            },
        });
    } catch { /* internals changed; stats stay 0 */ }

    const seqs = [];
    for (let i = 0; i < n; i++) seqs.push(context.getSequence());

    await run(seqs, 1, opts.warmupTokens, "warm up"); // first decode pays for buffer allocation
    await seqs[0].clearHistory();

    dec.measuring = true;
    const { seconds, stats } = await run(seqs, n, opts.tokens);
    dec.measuring = false;

    const tokens = stats.reduce((s, x) => s + x.tokens, 0);
    const ttftMean = stats.reduce((s, x) => s + x.ttft, 0) / n;
    const maxRSSMB = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
    const round = (x, d) => Number(x.toFixed(d));
    console.log(JSON.stringify({
        engine: ENGINE,
        streams: n,
        threads: opts.threads,
        tokens,
        seconds: round(seconds, 4),
        tokens_per_second: round(tokens / seconds, 2),
        ttft_ms_mean: round(ttftMean, 2),
        max_rss_mb: round(maxRSSMB, 1),
    }));
    console.error("detail " + JSON.stringify({
        streams: n,
        context_per_sequence: context.contextSize,
        n_ctx: Math.ceil(context.contextSize * n / 256) * 256, // what node-llama-cpp passes to llama.cpp
        batch_size: context.batchSize,
        threads_ideal: context.idealThreads,
        threads_current: context.currentThreads,
        flash_attention: context.flashAttention,
        prompt_tokens: stats.map((s) => s.promptTokens),
        eog_tokens_generated: stats.reduce((s, x) => s + x.eog, 0),
        decode_calls: dec.calls,
        decode_tokens: dec.tokens,
        mean_tokens_per_decode: dec.calls ? round(dec.tokens / dec.calls, 2) : null,
    }));

    for (const s of seqs) s.dispose();
    await context.dispose();
}

await model.dispose();
await llama.dispose();
