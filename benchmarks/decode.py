"""Decoding speed of 50 motion tokens at the official model size, on this machine.

A random-weight T5 of flan-t5-base's shape (12+12 layers, d_model 768, d_ff 2048,
gated-gelu, 32100 + 515 tokens) decodes 50 motion tokens (greedy) with Hugging Face
`generate` (the reference), this project's exact mode, fast mode (int8, the CPU's
default; both compiled steps on a CPU) and fast mode with float16 weights (a GPU's, run
by the torch loop on a CPU for comparison), all in one run, timed in turns (generate,
exact, fast, ..., generate, ...) so a busy neighbour slows all alike. It prints
ms/token, speed-ups against `generate`, and the share of its memory-bandwidth bound each
reaches: the bytes of weights a token must read (float32 for generate and exact, as
stored for fast; generate reads every row of the output layer, the loop only the motion
tokens') divided by this machine's bandwidth measured in the same run, three times: a
large tensor copy (bytes read + written; the goal's measure), a large sum (bytes read),
and a sum over the decoder's own weight tensors (the memory decoding reads; see
weights_bandwidth). Goals: fast >= 5x, exact >= 1.5x, each >= 50% of its bound (the
copy's). The last column is the share of the roofline: the copy's bound or, where
slower, the compiled product's speed with its weights already in cache (see
product_ceiling), which no memory can make faster.

    .venv/bin/python benchmarks/decode.py [--tokens 50] [--threads N] [--rounds 3]
    .venv/bin/python benchmarks/decode.py --crossover   # generate vs the loop by model size (for `auto`)
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import T5Config, T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.model import compiled_step
from server.model.decoding import AUTO_LOOP_MIN_DECODER_WEIGHTS, MotionDecoder, choose_mode, decoder_weights
from server.model.motiongpt import MotionGrammar, Sampling, grammar_chooser

TEXT_VOCAB, CODES = 32100, 512
RELEASE_SHAPE = dict(d_model=768, d_ff=2048, num_heads=12, num_layers=12)


def random_t5(d_model, d_ff, num_heads, num_layers, text_vocab=TEXT_VOCAB) -> T5ForConditionalGeneration:
    torch.manual_seed(0)
    config = T5Config(d_model=d_model, d_ff=d_ff, d_kv=64, num_heads=num_heads, num_layers=num_layers,
                      num_decoder_layers=num_layers, feed_forward_proj="gated-gelu", vocab_size=text_vocab + CODES + 3,
                      tie_word_embeddings=False, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.0)
    return T5ForConditionalGeneration(config).eval()


def memory_bandwidth(megabytes=512, repeats=5) -> tuple[float, float]:
    """(copy, read) bytes per second: a large tensor copy (read + write), a large sum (read)."""
    source = torch.ones(megabytes * 2**20 // 4)
    target = torch.empty_like(source)
    target.copy_(source)
    copy = min(_time(lambda: target.copy_(source)) for _ in range(repeats))
    read = min(_time(lambda: source.sum()) for _ in range(repeats))
    return 2 * source.numel() * 4 / copy, source.numel() * 4 / read


def weights_bandwidth(lm, repeats=5) -> float:
    """Bytes per second reading the decoder's own weight tensors (a sum of each): the
    memory the decoding modes read. On this virtual machine the large buffers of
    memory_bandwidth read at 35-75 GB/s from one process to the next while decoding
    speed does not follow, so this says whether a high reading reached the weights."""
    tensors = [parameter.detach() for parameter in lm.decoder.parameters()]
    nbytes = sum(t.numel() * t.element_size() for t in tensors)

    def read_all():
        for tensor in tensors:
            tensor.sum()

    read_all()
    return nbytes / min(_time(read_all) for _ in range(repeats))


def product_ceiling(dtype, threads: int, repeats=400) -> float:
    """Bytes per second of weights the compiled step's product multiplies when they are
    already in the cores' caches (a 384 KB matrix of d_model columns, over and over, on
    every thread): how fast the step could read weights on this CPU however fast its
    memory. For int8 weights this is the conversion of each weight to float32, about 21 G
    weights/s a core here: below the large copy's bandwidth in this machine's fast phases."""
    compiled_step.use_threads(threads)
    rows = 384 * 1024 // (RELEASE_SHAPE["d_model"] * np.dtype(dtype).itemsize)
    weight = np.random.default_rng(0).integers(-127, 128, (rows, RELEASE_SHAPE["d_model"])).astype(dtype)
    scale, x, out = np.ones(rows, np.float32), np.ones(weight.shape[1], np.float32), np.empty(rows, np.float32)

    def products():
        for _ in range(repeats):
            compiled_step.product(weight, scale, x, out)

    products()
    return weight.nbytes * repeats / min(_time(products) for _ in range(5))


def _time(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


MODES = ("generate", "exact", "fast", "fast-float16")


def runners(lm, text_vocab: int, tokens: int, modes=MODES) -> tuple[dict, dict, dict]:
    """({mode: run()}, {mode: weight bytes per token}, {mode: its decoder}) for each of
    `modes` (generate has no decoder)."""
    grammar = MotionGrammar(text_vocab, CODES, length=tokens, max_codes=tokens)
    prompt = torch.randint(3, min(text_vocab, 32000), (1, 24))
    mask = torch.ones_like(prompt)
    steps = tokens + 2  # motion start, codes, motion end

    def run_generate():
        with torch.inference_mode():
            return lm.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=steps, do_sample=False,
                               logits_processor=[grammar], eos_token_id=grammar.end, pad_token_id=0)[0, 1:].tolist()

    decoders = {}

    def loop(name):
        mode, _, weights = name.partition("-")
        decoders[name] = decoder = MotionDecoder(lm, mode, max_length=steps + 2, fast_weights=weights or None)
        choose = grammar_chooser(grammar, mode, Sampling(greedy=True), torch.Generator())
        return lambda: decoder.decode({"input_ids": prompt, "attention_mask": mask}, choose, steps, stop_ids={grammar.end})

    functions = {name: run_generate if name == "generate" else loop(name) for name in modes}
    weight_bytes = {name: decoder.weight_bytes(CODES + 3) for name, decoder in decoders.items()}
    if "generate" in modes:
        weight_bytes["generate"] = decoder_weights(lm) * 4 + lm.config.vocab_size * lm.config.d_model * 4
    return functions, weight_bytes, decoders


def timed_in_turns(functions: dict, rounds: int) -> tuple[dict, dict]:
    """(outputs, best seconds per token) with the functions run in turns."""
    outputs = {name: run() for name, run in functions.items()}  # warm-up, and outputs to compare
    best = {name: float("inf") for name in functions}
    for _ in range(rounds):
        for name, run in functions.items():
            best[name] = min(best[name], _time(run))
    return outputs, {name: best[name] / len(outputs[name]) for name in functions}


def release(args):
    lm = random_t5(**RELEASE_SHAPE)
    functions, weight_bytes, decoders = runners(lm, TEXT_VOCAB, args.tokens)
    outputs, timings = timed_in_turns(functions, args.rounds)
    copy, read = memory_bandwidth()
    own = weights_bandwidth(lm)
    # The compiled steps' products in cache: how fast their weights could be read at all.
    ceilings = {name: product_ceiling(np.int8 if name == "fast" else np.float32, args.threads)
                for name in ("exact", "fast") if decoders[name].compiled is not None}

    def agreement(name):
        return sum(a == b for a, b in zip(outputs["exact"], outputs[name])) / len(outputs["exact"])

    print(f"threads {args.threads}, {len(outputs['generate'])} tokens per run, best of {args.rounds} in turns; "
          f"bandwidth: copy {copy / 1e9:.1f} GB/s, read {read / 1e9:.1f} GB/s, "
          f"the decoder's own weights read {own / 1e9:.1f} GB/s"
          + "".join(f"; {name}'s compiled product in cache {ceiling / 1e9:.1f} GB/s" for name, ceiling in ceilings.items()))
    print(f"{'mode':13s} {'ms/token':>9s} {'speed-up':>9s} {'MB/token':>9s} {'bound ms':>9s} {'of bound':>9s} {'(read)':>7s} "
          f"{'(weights)':>9s} {'(roofline)':>10s}")
    goals = {"exact": (1.5, 0.5), "fast": (5.0, 0.5)}
    met = []
    for name in MODES:
        weights = weight_bytes[name]
        speedup = timings["generate"] / timings[name]
        share, share_read, share_own = (weights / bandwidth / timings[name] for bandwidth in (copy, read, own))
        # The roofline: the copy's bound or the product's own speed, whichever is slower.
        roofline = f"{max(weights / copy, weights / ceilings[name]) / timings[name]:9.0%}" if name in ceilings else "       --"
        print(f"{name:13s} {timings[name] * 1e3:9.2f} {speedup:8.2f}x {weights / 1e6:9.1f} {weights / copy * 1e3:9.2f} "
              f"{share:8.0%} {share_read:6.0%} {share_own:8.0%} {roofline:>10s}")
        if name in goals:
            need_speed, need_share = goals[name]
            met.append(f"{name} >= {need_speed:g}x ({'met' if speedup >= need_speed else 'NOT met'}), "
                       f"{name} >= {need_share:.0%} of bound ({'met' if share >= need_share else 'NOT met'})")
    print(f"exact == generate (greedy): {outputs['exact'] == outputs['generate']}; "
          f"fast agrees with exact on {agreement('fast'):.0%} of tokens, fast-float16 on {agreement('fast-float16'):.0%} "
          "(random weights: near ties everywhere; the README has the cost on a trained model)")
    print("goals: " + "; ".join(met))


def crossover(args):
    """generate against the loop from the embedded model's size to the release's: where
    `auto` switches (AUTO_LOOP_MIN_DECODER_WEIGHTS)."""
    shapes = [dict(d_model=256, d_ff=1024, num_heads=4, num_layers=4),  # the embedded model's shape
              dict(d_model=384, d_ff=1024, num_heads=6, num_layers=4),
              dict(d_model=512, d_ff=1024, num_heads=8, num_layers=6),
              dict(d_model=512, d_ff=2048, num_heads=8, num_layers=8),
              RELEASE_SHAPE]
    print(f"threads {args.threads}, {args.tokens} tokens, best of {args.rounds} in turns; auto switches to the fast "
          f"loop at {AUTO_LOOP_MIN_DECODER_WEIGHTS / 1e6:.1f}M decoder weights")
    print(f"{'shape':28s} {'weights':>8s} {'generate':>9s} {'exact':>9s} {'fast':>9s}  {'fast/gen':>8s} auto")
    for shape in shapes:
        text_vocab = 200 if shape["d_model"] == 256 else TEXT_VOCAB  # the embedded model's vocabulary is small
        lm = random_t5(**shape, text_vocab=text_vocab)
        _, timings = timed_in_turns(runners(lm, text_vocab, args.tokens, ("generate", "exact", "fast"))[0], args.rounds)
        label = f"d{shape['d_model']} ff{shape['d_ff']} {shape['num_layers']}+{shape['num_layers']} layers"
        print(f"{label:28s} {decoder_weights(lm) / 1e6:7.1f}M " + " ".join(f"{timings[m] * 1e3:9.2f}" for m in
              ("generate", "exact", "fast")) + f"  {timings['generate'] / timings['fast']:7.2f}x {choose_mode('auto', lm)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each mode, in turns (best counts)")
    parser.add_argument("--crossover", action="store_true", help="generate vs the loop by model size (for auto)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    crossover(args) if args.crossover else release(args)


if __name__ == "__main__":
    main()
