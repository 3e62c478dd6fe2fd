"""A decoding loop for motion tokens, on the CPU or a GPU.

Decoding is memory-bound: every token streams the decoder's weights once. Hugging
Face's `generate` also pays for general machinery on every step. This loop runs the
encoder once, projects the encoder output to each layer's cross-attention keys and
values once, keeps the self-attention keys and values in a preallocated cache, and
computes the relative position bias once for all steps.

Two modes:
- exact: the decoder's weights as they are and the same arithmetic as `generate`:
  greedy output is token for token the same (logits are computed for the block of
  rows holding the motion tokens, bit for bit as in the full product; see
  motiongpt.grammar_chooser). With `split_rows` each projection is computed as two
  halves of its rows on two threads: one matrix-vector product runs at about one core's
  memory bandwidth, two on an idle machine at nearly twice that, and every output is the same dot product computed by the
  same kernel, so the numbers do not change (halves split at a multiple of 16 rows,
  where the kernel's blocking is unchanged; tested bit for bit).
- fast: projections fused (q/k/v, the two gated feed-forward inputs) and stored as
  float16, half the bytes each token streams, and logits computed only for the tokens
  the motion grammar allows at each step. float16 rather than int8: torch's int8 paths
  for one row (dynamic quantization, weight-only int8) ran at a quarter or less of the
  float16 kernel's bytes per second on the 2-core test machine (measured while it was
  busy), so int8 read half the bytes and took longer;
  and float16 keeps 11 bits of every activation where dynamic quantization kept 8. The
  feed-forward output's input is scaled to at most 1 before it is rounded (T5's
  feed-forward activations can pass float16's range). The encoder reads the prompt
  without its padding. Output differs slightly from exact mode (see the README).

`auto` (choose_mode) picks by the model's size: exact mode for small models (the same
tokens as `generate`, never slower), fast mode where the weights dominate.
The loop runs on the device the model is on; on a CPU it runs on one thread (row halves
over two threads, `split_rows=True`, lost to the hand-offs' waits on a shared machine).
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import nn

MODES = ("exact", "fast")

# `auto`: below this many decoder weights exact mode, at or above it fast mode. At the
# embedded model's size (4.7M) the loop was level with `generate` on an idle machine and
# 3.7x faster on a busy one (benchmarks/generate.py), so exact mode, which gives the same
# tokens, is never the slower; float16 weights only pay where the weights dominate (the
# release has 99M: fast was ahead of generate in every run of benchmarks/decode.py).
# Where fast overtakes exact between the two is still to be measured on a quiet machine
# (benchmarks/decode.py --crossover prints it).
AUTO_LOOP_MIN_DECODER_WEIGHTS = 8_000_000


class Cancelled(Exception):
    """Decoding stopped because the caller asked it to."""


def decoder_weights(lm) -> int:
    """How many decoder weights one decoding step reads (cross-attention keys and values
    are projected once per prompt, the output layer only in the motion tokens' rows)."""
    total = 0
    for block in lm.decoder.block:
        self_attn, cross = block.layer[0].SelfAttention, block.layer[1].EncDecAttention
        ff = block.layer[2].DenseReluDense
        ff_linears = [m for m in ff.children() if isinstance(m, nn.Linear)]
        total += sum(m.weight.numel() for m in (self_attn.q, self_attn.k, self_attn.v, self_attn.o, cross.q, cross.o, *ff_linears))
    return total


def choose_mode(requested: str, lm) -> str:
    """The decoding mode for `requested` ("auto", "exact", "fast" or "hf") and this model:
    auto is exact mode for small models and fast mode for large ones."""
    if requested != "auto":
        return requested
    return "fast" if decoder_weights(lm) >= AUTO_LOOP_MIN_DECODER_WEIGHTS else "exact"


@dataclass
class _Layer:
    self_norm: torch.Tensor
    qkv: object  # x -> (q, k, v)
    self_out: object  # x -> (y,)
    cross_norm: torch.Tensor
    cross_q: object
    cross_out: object
    ff_norm: torch.Tensor
    ff_in: object  # x -> (gate, linear) or (hidden,)
    ff_out: object
    act: nn.Module
    gated: bool


def _linears_inference(x, weights):
    # Inference mode is per thread: the helper thread must enter it itself.
    with torch.inference_mode():
        return [nn.functional.linear(x, w) for w in weights]


class _Linears:
    """Several projections of the same input, each its own product, as `generate` does."""

    def __init__(self, weights):
        self.weights = [w.detach() for w in weights]

    def __call__(self, x):
        return tuple(nn.functional.linear(x, w) for w in self.weights)


class _RowHalves:
    """Several projections of the same input (q, k, v; the two gated inputs; or one),
    each as two halves of its rows, the bottom halves on a helper thread: one hand-off
    for the group. Halves split at a multiple of 16 rows, where the kernel's blocking
    is unchanged, so every output is the dot product `generate` computes."""

    def __init__(self, weights, pool: ThreadPoolExecutor):
        self.tops, self.bottoms = [], []
        for weight in weights:
            half = (weight.shape[0] // 2) // 16 * 16
            self.tops.append(weight.detach()[:half])
            self.bottoms.append(weight.detach()[half:])
        self.pool = pool

    def __call__(self, x):
        bottoms = self.pool.submit(_linears_inference, x, self.bottoms)
        tops = [nn.functional.linear(x, top) for top in self.tops]
        return tuple(torch.cat([top, bottom], dim=-1) for top, bottom in zip(tops, bottoms.result()))


class _Float16:
    """Projections of the same input fused into one float16 matrix (halves on two cores
    when there is a pool), results back in float32.

    With `scaled`, the input is divided by its largest magnitude before it is rounded to
    float16 and the output multiplied back: the feed-forward output's input can pass
    float16's range (65504) in T5 models."""

    def __init__(self, weights, pool: ThreadPoolExecutor | None, scaled: bool = False):
        fused = torch.cat([w.detach() for w in weights], dim=0).to(torch.float16).contiguous()
        self.sizes = [w.shape[0] for w in weights]
        self.scaled = scaled
        self.pool = pool
        if pool is not None:
            half = (fused.shape[0] // 2) // 16 * 16
            self.top, self.bottom = fused[:half], fused[half:]
        else:
            self.whole = fused

    def __call__(self, x):
        if self.scaled:
            scale = x.abs().amax().clamp_min(1e-12)
            x = x / scale
        x = x.to(torch.float16)
        if self.pool is not None:
            bottom = self.pool.submit(_linears_inference, x, [self.bottom])
            y = torch.cat([nn.functional.linear(x, self.top), bottom.result()[0]], dim=-1).float()
        else:
            y = nn.functional.linear(x, self.whole).float()
        if self.scaled:
            y = y * scale
        return y.split(self.sizes, dim=-1) if len(self.sizes) > 1 else (y,)


class MotionDecoder:
    """Greedy or sampled decoding of one sequence with a T5ForConditionalGeneration, on
    the device the model is on."""

    def __init__(self, lm, mode: str = "exact", max_length: int = 260, split_rows: bool | None = None):
        if mode not in MODES:
            raise ValueError(f"decoding mode must be 'exact' or 'fast', got {mode!r}")
        self.lm = lm
        self.mode = mode
        self.max_length = max_length
        self.device = next(lm.parameters()).device
        config = lm.config
        self.heads, self.d_kv, self.eps = config.num_heads, config.d_kv, config.layer_norm_epsilon
        self.inner = self.heads * self.d_kv
        decoder = lm.decoder
        self.embed = decoder.embed_tokens.weight
        self.final_norm = decoder.final_layer_norm.weight
        # T5 scales the last hidden state when the output layer is tied to the embeddings.
        self.output_scale = config.d_model**-0.5 if config.tie_word_embeddings else 1.0
        self.lm_head = lm.lm_head.weight
        if split_rows is None:
            # Row halves on two threads could read at two cores' bandwidth, but every
            # hand-off waits for the helper thread to be scheduled, and on a shared
            # machine that wait dominates: exact mode took 61 ms/token on one thread and
            # 310 with halves, fast mode 344 against 1445 under heavier load
            # (benchmarks/decode.py, in turns). Off by default; still tested bit for bit.
            split_rows = False
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="decode") if split_rows else None
        with torch.no_grad():
            # Decoder self-attention is causal: the bias for query t over keys 0..t.
            attention = decoder.block[0].layer[0].SelfAttention
            self.position_bias = attention.compute_bias(max_length, max_length, device=self.device)[0]
        self.layers = [self._layer(block) for block in decoder.block]

    def _layer(self, block) -> _Layer:
        self_attn, cross_attn, ff = block.layer[0].SelfAttention, block.layer[1].EncDecAttention, block.layer[2].DenseReluDense
        gated = hasattr(ff, "wi_0")
        groups = [(self_attn.q, self_attn.k, self_attn.v), (self_attn.o,), (cross_attn.q,), (cross_attn.o,),
                  (ff.wi_0, ff.wi_1) if gated else (ff.wi,), (ff.wo,)]
        if self.mode == "fast":
            qkv, self_out, cross_q, cross_out, ff_in, ff_out = (
                _Float16([m.weight for m in group], self.pool, scaled=(index == 5)) for index, group in enumerate(groups))
        elif self.pool is not None:
            qkv, self_out, cross_q, cross_out, ff_in, ff_out = (_RowHalves([m.weight for m in g], self.pool) for g in groups)
        else:
            qkv, self_out, cross_q, cross_out, ff_in, ff_out = (_Linears([m.weight for m in g]) for g in groups)
        return _Layer(block.layer[0].layer_norm.weight, qkv, self_out, block.layer[1].layer_norm.weight, cross_q,
                      cross_out, block.layer[2].layer_norm.weight, ff_in, ff_out, ff.act, gated)

    def _norm(self, x, weight):
        # T5's RMS norm: no mean, no bias, variance in float32.
        variance = x.pow(2).mean(-1, keepdim=True)
        return weight * (x * torch.rsqrt(variance + self.eps))

    def _heads(self, x):
        return x.view(-1, self.heads, self.d_kv).transpose(0, 1)  # (heads, n, d_kv)

    @torch.inference_mode()
    def decode(self, encoder_inputs: dict, choose, max_new_tokens: int, stop_ids, should_stop=None):
        """Decode up to `max_new_tokens` tokens after the decoder start token, for the
        prompt `encoder_inputs` (one row of `input_ids` or `inputs_embeds`, with its
        `attention_mask`; padded prompts are fine, the mask hides the pads).

        `choose(step, hidden, logits_fn)` picks the next token id from the final hidden
        state; `logits_fn(lo, hi)` gives the logits of token ids lo..hi-1 (only those are
        computed), as a float32 tensor on the CPU. Stops at any of `stop_ids`, or when
        `should_stop()` says so (checked every step, for cancellation: raises Cancelled).
        Returns the new token ids.
        """
        if max_new_tokens + 1 > self.max_length:
            raise ValueError(f"at most {self.max_length - 1} new tokens, asked {max_new_tokens}")
        encoder_inputs = {name: value.to(self.device) for name, value in encoder_inputs.items()}
        attention_mask = encoder_inputs.get("attention_mask")
        if self.mode == "fast" and attention_mask is not None and not bool(attention_mask.all()):
            # Fast mode reads only the prompt's own tokens: masked pads change nothing but
            # rounding, and a prompt padded to 256 tokens (the release's contract) costs the
            # encoder ten times a short prompt's work.
            keep = attention_mask[0].bool()
            encoder_inputs = {name: value[:, keep] for name, value in encoder_inputs.items()}
            attention_mask = encoder_inputs["attention_mask"]
        encoder_out = self.lm.encoder(**encoder_inputs).last_hidden_state[0]
        # Masked encoder positions (padding) get the most negative number in cross-attention.
        cross_mask = torch.zeros(encoder_out.shape[0], device=self.device) if attention_mask is None else \
            (1.0 - attention_mask[0].to(encoder_out.dtype)) * torch.finfo(encoder_out.dtype).min
        cross = []
        for block in self.lm.decoder.block:
            attn = block.layer[1].EncDecAttention
            cross.append((self._heads(attn.k(encoder_out)).transpose(-1, -2), self._heads(attn.v(encoder_out))))
        keys = torch.zeros(len(self.layers), self.heads, self.max_length, self.d_kv, device=self.device)
        values = torch.zeros_like(keys)

        threads = torch.get_num_threads()
        if self.device.type == "cpu":
            # One row at a time is too little work for torch's thread pool: its tiny ops
            # (attention over 12 heads, a softmax over a few keys) wait for the pool's
            # other thread, milliseconds each on a busy machine (profiled: bmm 7 ms,
            # softmax 10 ms on average); the row halves, where used, are the parallelism.
            torch.set_num_threads(1)
        try:
            return self._loop(cross, cross_mask, keys, values, choose, max_new_tokens, stop_ids, should_stop)
        finally:
            torch.set_num_threads(threads)

    def _loop(self, cross, cross_mask, keys, values, choose, max_new_tokens, stop_ids, should_stop):
        token = self.lm.config.decoder_start_token_id
        out = []
        heads, d_kv, inner = self.heads, self.d_kv, self.inner
        for step in range(max_new_tokens):
            if should_stop is not None and should_stop():
                raise Cancelled("decoding was cancelled")
            hidden = self.embed[token][None]  # (1, d_model)
            bias = self.position_bias[:, step : step + 1, : step + 1]
            for index, layer in enumerate(self.layers):
                q, k, v = layer.qkv(self._norm(hidden, layer.self_norm))
                keys[index, :, step] = k.view(heads, d_kv)
                values[index, :, step] = v.view(heads, d_kv)
                scores = self._heads(q) @ keys[index, :, : step + 1].transpose(-1, -2) + bias
                weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
                context = (weights @ values[index, :, : step + 1]).transpose(0, 1).reshape(1, inner)
                hidden = hidden + layer.self_out(context)[0]

                cross_keys, cross_values = cross[index]
                scores = self._heads(layer.cross_q(self._norm(hidden, layer.cross_norm))[0]) @ cross_keys + cross_mask
                weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
                context = (weights @ cross_values).transpose(0, 1).reshape(1, inner)
                hidden = hidden + layer.cross_out(context)[0]

                projected = layer.ff_in(self._norm(hidden, layer.ff_norm))
                inner_state = layer.act(projected[0])
                if layer.gated:
                    inner_state = inner_state * projected[1]
                hidden = hidden + layer.ff_out(inner_state)[0]
            final = self._norm(hidden, self.final_norm)[0] * self.output_scale

            def logits(lo=0, hi=None, final=final):
                return nn.functional.linear(final, self.lm_head[lo:hi]).float().cpu()

            token = int(choose(step, final, logits))
            out.append(token)
            if token in stop_ids:
                break
        return out
