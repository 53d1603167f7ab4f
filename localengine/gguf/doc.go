// Package gguf writes and reads GGUF files, the model format of llama.cpp and
// ggml, and generates small but valid llama-architecture models with seeded
// random weights for tests and demos of the embedded llama.cpp engine.
//
// The package has two levels:
//
//   - A generic GGUF v3 writer ([File], [KV], [Tensor]) and a reader of the
//     metadata ([Read], [ReadFile]) that checks a file the way llama.cpp's
//     gguf loader does: magic, version, key/value types, tensor shapes, types,
//     alignment and offsets.
//   - A model generator ([Shape], [Tiny], [Bench], [Model], [Generate],
//     [GenerateFile]) that builds an all-F32 llama model with a
//     SentencePiece-style vocabulary, ChatML special tokens and a ChatML chat
//     template.
//
// Generated models are deterministic: the same [Shape] and seed always give
// the same bytes. Their weights are random, so they produce gibberish, but
// llama.cpp loads, runs and quantizes them like any other llama model.
//
// The package uses only the standard library.
package gguf
