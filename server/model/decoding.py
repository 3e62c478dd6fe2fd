"""A decoding loop for motion tokens, written for a CPU.

Decoding is memory-bound: every token streams the decoder's weights once. Hugging
Face's `generate` also pays for general machinery on every step. This loop runs the
encoder once, projects the encoder output to each layer's cross-attention keys and
values once, keeps the self-attention keys and values in a preallocated cache, and
computes the relative position bias once for all steps.

Two modes:
- exact: the decoder's weights as they are and the same arithmetic as `generate`:
  greedy output is token for token the same (logits are computed for the block of
  rows holding the motion tokens, bit for bit as in the full product; see
  motiongpt.grammar_chooser). On a machine
  with two or more cores each projection is computed as two halves of its rows on two
  threads: one matrix-vector product runs at about one core's memory bandwidth, two
  run at nearly twice that, and every output is the same dot product computed by the
  same kernel, so the numbers do not change (halves split at a multiple of 16 rows,
  where the kernel's blocking is unchanged; tested bit for bit).
- fast: projections fused (q/k/v, the two gated feed-forward inputs) and stored as int8
  (dynamic quantization), and logits computed only for the tokens the motion grammar
  allows at each step. Output differs slightly from exact mode (see the README).
"""

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import nn


class Cancelled(Exception):
    """Decoding stopped because the caller asked it to."""


@dataclass
class _Layer:
    self_norm: torch.Tensor
    qkv: object  # fast: one fused int8 module; exact: q, k, v as row halves (or a tuple of modules)
    self_out: object
    cross_norm: torch.Tensor
    cross_q: nn.Module
    cross_out: nn.Module
    ff_norm: torch.Tensor
    ff_in: object  # the gated inputs, organised like qkv
    ff_out: nn.Module
    act: nn.Module
    gated: bool


class _RowHalves:
    """x @ W^T as two row halves, the second on a helper thread."""

    def __init__(self, weight: torch.Tensor, pool: ThreadPoolExecutor):
        half = (weight.shape[0] // 2) // 16 * 16
        weight = weight.detach()
        self.top, self.bottom = weight[:half], weight[half:]
        self.pool = pool

    def __call__(self, x):
        bottom = self.pool.submit(_linears_inference, x, [self.bottom])
        return torch.cat([nn.functional.linear(x, self.top), bottom.result()[0]], dim=-1)


class _RowHalvesGroup:
    """Several projections of the same input (q, k, v; or the two gated inputs) as row
    halves: one hand-off to the helper thread for all their bottom halves."""

    def __init__(self, weights, pool: ThreadPoolExecutor):
        self.parts = [_RowHalves(w, pool) for w in weights]
        self.pool = pool

    def __call__(self, x):
        bottoms = self.pool.submit(_linears_inference, x, [p.bottom for p in self.parts])
        tops = [nn.functional.linear(x, p.top) for p in self.parts]
        return tuple(torch.cat([top, bottom], dim=-1) for top, bottom in zip(tops, bottoms.result()))


def _linears_inference(x, weights):
    # Inference mode is per thread: the helper thread must enter it itself.
    with torch.inference_mode():
        return [nn.functional.linear(x, w) for w in weights]


def _fuse(linears) -> nn.Linear:
    fused = nn.Linear(linears[0].in_features, sum(linear.out_features for linear in linears), bias=False)
    with torch.no_grad():
        fused.weight.copy_(torch.cat([linear.weight for linear in linears], dim=0))
    return fused


def _quantize(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's dynamic quantization is deprecated but sound
        return torch.ao.quantization.quantize_dynamic(nn.Sequential(module), {nn.Linear}, dtype=torch.qint8)[0]


class MotionDecoder:
    """Greedy or sampled decoding of one sequence with a T5ForConditionalGeneration."""

    def __init__(self, lm, mode: str = "exact", max_length: int = 260):
        if mode not in ("exact", "fast"):
            raise ValueError(f"decoding mode must be 'exact' or 'fast', got {mode!r}")
        self.lm = lm
        self.mode = mode
        self.max_length = max_length
        config = lm.config
        self.heads, self.d_kv, self.eps = config.num_heads, config.d_kv, config.layer_norm_epsilon
        self.inner = self.heads * self.d_kv
        decoder = lm.decoder
        self.embed = decoder.embed_tokens.weight
        self.final_norm = decoder.final_layer_norm.weight
        # T5 scales the last hidden state when the output layer is tied to the embeddings.
        self.output_scale = config.d_model**-0.5 if config.tie_word_embeddings else 1.0
        self.lm_head = lm.lm_head.weight
        cores = len(os.sched_getaffinity(0))
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="decode") if mode == "exact" and cores >= 2 else None
        with torch.no_grad():
            # Decoder self-attention is causal: the bias for query t over keys 0..t.
            self.position_bias = decoder.block[0].layer[0].SelfAttention.compute_bias(max_length, max_length)[0]
        self.layers = [self._layer(block, fast=(mode == "fast")) for block in decoder.block]

    def _layer(self, block, fast: bool) -> _Layer:
        self_attn, cross_attn, ff = block.layer[0].SelfAttention, block.layer[1].EncDecAttention, block.layer[2].DenseReluDense
        gated = hasattr(ff, "wi_0")
        ff_inputs = (ff.wi_0, ff.wi_1) if gated else (ff.wi,)
        if fast:
            qkv, ff_in = _quantize(_fuse((self_attn.q, self_attn.k, self_attn.v))), _quantize(_fuse(ff_inputs))
            self_out, cross_q, cross_out, ff_out = (_quantize(m) for m in (self_attn.o, cross_attn.q, cross_attn.o, ff.wo))
        elif self.pool is not None:
            halves = lambda m: _RowHalves(m.weight, self.pool)  # noqa: E731
            qkv = _RowHalvesGroup([m.weight for m in (self_attn.q, self_attn.k, self_attn.v)], self.pool)
            ff_in = _RowHalvesGroup([m.weight for m in ff_inputs], self.pool)
            self_out, cross_q, cross_out, ff_out = (halves(m) for m in (self_attn.o, cross_attn.q, cross_attn.o, ff.wo))
        else:
            qkv, ff_in = (self_attn.q, self_attn.k, self_attn.v), ff_inputs
            self_out, cross_q, cross_out, ff_out = self_attn.o, cross_attn.q, cross_attn.o, ff.wo
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
        `attention_mask`).

        `choose(step, hidden, logits_fn)` picks the next token id from the final hidden
        state; `logits_fn(lo, hi)` gives the logits of token ids lo..hi-1 (only those are
        computed). Stops at any of `stop_ids`, or when `should_stop()` says so (checked
        every step, for cancellation: raises Cancelled). Returns the new token ids.
        """
        if max_new_tokens + 1 > self.max_length:
            raise ValueError(f"at most {self.max_length - 1} new tokens, asked {max_new_tokens}")
        attention_mask = encoder_inputs.get("attention_mask")
        encoder_out = self.lm.encoder(**encoder_inputs).last_hidden_state[0]
        # Masked encoder positions (padding) get -inf in cross-attention.
        cross_mask = torch.zeros(encoder_out.shape[0]) if attention_mask is None else \
            (1.0 - attention_mask[0].to(encoder_out.dtype)) * torch.finfo(encoder_out.dtype).min
        cross = []
        for block in self.lm.decoder.block:
            attn = block.layer[1].EncDecAttention
            cross.append((self._heads(attn.k(encoder_out)), self._heads(attn.v(encoder_out))))
        keys = torch.zeros(len(self.layers), self.heads, self.max_length, self.d_kv)
        values = torch.zeros_like(keys)

        threads = torch.get_num_threads()
        if self.pool is not None:
            # The two halves are the parallelism; torch's own pool would only contend.
            torch.set_num_threads(1)
        try:
            return self._loop(cross, cross_mask, keys, values, choose, max_new_tokens, stop_ids, should_stop)
        finally:
            torch.set_num_threads(threads)

    def _loop(self, cross, cross_mask, keys, values, choose, max_new_tokens, stop_ids, should_stop):
        token = self.lm.config.decoder_start_token_id
        out = []
        for step in range(max_new_tokens):
            if should_stop is not None and should_stop():
                raise Cancelled("decoding was cancelled")
            hidden = self.embed[token][None]  # (1, d_model)
            for index, layer in enumerate(self.layers):
                normed = self._norm(hidden, layer.self_norm)
                if isinstance(layer.qkv, _RowHalvesGroup):
                    q, k, v = layer.qkv(normed)
                elif isinstance(layer.qkv, tuple):
                    q, k, v = (m(normed) for m in layer.qkv)
                else:
                    q, k, v = layer.qkv(normed).split(self.inner, dim=-1)
                keys[index, :, step] = k.view(self.heads, self.d_kv)
                values[index, :, step] = v.view(self.heads, self.d_kv)
                scores = self._heads(q) @ keys[index, :, : step + 1].transpose(-1, -2)
                scores = scores + self.position_bias[:, step : step + 1, : step + 1]
                weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
                context = (weights @ values[index, :, : step + 1]).transpose(0, 1).reshape(1, self.inner)
                hidden = hidden + layer.self_out(context)

                normed = self._norm(hidden, layer.cross_norm)
                cross_keys, cross_values = cross[index]
                scores = self._heads(layer.cross_q(normed)) @ cross_keys.transpose(-1, -2) + cross_mask
                weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
                context = (weights @ cross_values).transpose(0, 1).reshape(1, self.inner)
                hidden = hidden + layer.cross_out(context)

                normed = self._norm(hidden, layer.ff_norm)
                if isinstance(layer.ff_in, (tuple, _RowHalvesGroup)):
                    projected = layer.ff_in(normed) if isinstance(layer.ff_in, _RowHalvesGroup) else [m(normed) for m in layer.ff_in]
                    inner = layer.act(projected[0])
                    if layer.gated:
                        inner = inner * projected[1]
                elif layer.gated:
                    gate, linear = layer.ff_in(normed).chunk(2, dim=-1)
                    inner = layer.act(gate) * linear
                else:
                    inner = layer.act(layer.ff_in(normed))
                hidden = hidden + layer.ff_out(inner)
            final = self._norm(hidden, self.final_norm)[0] * self.output_scale

            def logits(lo=0, hi=None, final=final):
                return nn.functional.linear(final, self.lm_head[lo:hi])

            token = int(choose(step, final, logits))
            out.append(token)
            if token in stop_ids:
                break
        return out
