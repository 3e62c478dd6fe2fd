"""Decoding speed of 50 motion tokens at the official model size, on this machine.

A random-weight T5 of flan-t5-base's shape (12+12 layers, d_model 768, d_ff 2048,
gated-gelu, 32100 + 515 tokens) decodes 50 motion tokens (greedy) with Hugging Face
`generate` (the reference), this project's exact mode and fast mode, all in one run.
It prints ms/token, speed-ups against `generate`, and the fraction of the memory
bandwidth bound each reaches: the bytes of decoder weights a token must read divided
by a copy bandwidth measured here. Goals: exact >= 1.5x, fast >= 3x.

    .venv/bin/python benchmarks/decode.py [--tokens 50] [--threads N]
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.model.decoding import MotionDecoder
from server.model.motiongpt import MotionGrammar, Sampling, grammar_chooser

TEXT_VOCAB, CODES = 32100, 512


def copy_bandwidth(megabytes=512, repeats=5) -> float:
    """Bytes per second moved by a large tensor copy (read + write)."""
    source = torch.empty(megabytes * 2**20 // 4)
    target = torch.empty_like(source)
    target.copy_(source)
    best = min(_time(lambda: target.copy_(source)) for _ in range(repeats))
    return 2 * source.numel() * 4 / best


def _time(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def decoder_bytes_per_token(lm, mode: str, allowed_rows: int) -> int:
    """Weight bytes one decoding step reads (cross-attention K/V are computed once):
    the decoder's projections plus `allowed_rows` rows of the output layer."""
    total = 0
    for block in lm.decoder.block:
        self_attn, cross, ff = block.layer[0].SelfAttention, block.layer[1].EncDecAttention, block.layer[2].DenseReluDense
        linears = [self_attn.q, self_attn.k, self_attn.v, self_attn.o, cross.q, cross.o, ff.wi_0, ff.wi_1, ff.wo]
        weights = sum(m.weight.numel() for m in linears)
        total += weights * (1 if mode == "fast" else 4)
    return total + allowed_rows * lm.config.d_model * 4


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = T5Config(d_model=768, d_ff=2048, d_kv=64, num_heads=12, num_layers=12, num_decoder_layers=12,
                      feed_forward_proj="gated-gelu", vocab_size=TEXT_VOCAB + CODES + 3, tie_word_embeddings=False,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.0)
    lm = T5ForConditionalGeneration(config).eval()
    grammar = MotionGrammar(TEXT_VOCAB, CODES, length=args.tokens, max_codes=args.tokens)
    prompt = torch.randint(3, 32000, (1, 24))
    mask = torch.ones_like(prompt)
    steps = args.tokens + 2  # motion start, codes, motion end

    def run_generate():
        with torch.inference_mode():
            return lm.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=steps, do_sample=False,
                               logits_processor=[grammar], eos_token_id=grammar.end, pad_token_id=0)[0, 1:].tolist()

    def loop(mode):
        decoder = MotionDecoder(lm, mode, max_length=steps + 2)

        choose = grammar_chooser(grammar, mode, Sampling(greedy=True), torch.Generator())
        return lambda: decoder.decode({"input_ids": prompt, "attention_mask": mask}, choose, steps, stop_ids={grammar.end})

    runners = {"generate": run_generate, "exact": loop("exact"), "fast": loop("fast")}
    outputs = {name: run() for name, run in runners.items()}  # warm-up, and outputs to compare
    timings = {name: min(_time(run) for _ in range(3)) / len(outputs[name]) for name, run in runners.items()}
    bandwidth = copy_bandwidth()
    agreement = sum(a == b for a, b in zip(outputs["exact"], outputs["fast"])) / len(outputs["exact"])

    print(f"threads {args.threads}, {len(outputs['generate'])} tokens per run, copy bandwidth {bandwidth / 1e9:.1f} GB/s")
    print(f"{'mode':10s} {'ms/token':>9s} {'speed-up':>9s} {'bound ms':>9s} {'of bound':>9s}")
    for name in ("generate", "exact", "fast"):
        # generate computes every logit; the loop only the motion tokens' rows.
        rows = config.vocab_size if name == "generate" else CODES + 3
        bytes_per_token = decoder_bytes_per_token(lm, "fast" if name == "fast" else "exact", rows)
        bound = bytes_per_token / bandwidth
        print(f"{name:10s} {timings[name] * 1e3:9.2f} {timings['generate'] / timings[name]:8.2f}x "
              f"{bound * 1e3:9.2f} {bound / timings[name]:8.0%}")
    print(f"exact == generate (greedy): {outputs['exact'] == outputs['generate']}; "
          f"fast agrees with exact on {agreement:.0%} of tokens (random weights)")
    print(f"goals: exact >= 1.5x ({'met' if timings['generate'] / timings['exact'] >= 1.5 else 'NOT met'}), "
          f"fast >= 3x ({'met' if timings['generate'] / timings['fast'] >= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
