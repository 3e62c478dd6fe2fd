"""A decoding loop for motion tokens, on the CPU or a GPU.

Decoding is memory-bound: every token streams the decoder's weights once. Hugging
Face's `generate` also pays for general machinery on every step. This loop runs the
encoder once, projects the encoder output to each layer's cross-attention keys and
values once, keeps the self-attention keys and values in a preallocated cache, and
computes the relative position bias once for all steps.

On a CPU each step is one call of compiled_step.decoder_step (numba): every layer's
products, attention, norms and feed-forward compiled together, each product reading its
weights at about the speed of a plain sum. Where that step cannot compute a model (an
activation it does not know, weights that are not float32), where numba's threads are
slow to start (compiled_step.threads_start_quickly) and on a GPU, the step is torch
operations (`_torch_step`); `MotionDecoder(compiled=False)` asks for those on a CPU.

Two modes:
- exact: the decoder's weights as they are (float32), the same operations as
  `generate`, sums in another order: logits differ from `generate`'s by float32
  rounding (greedy tokens the same in every test, at flan-t5-base's size too). In the
  torch loop each CPU product is streamed_product, because torch's one-row product
  reads memory at half the speed. Logits are computed only for the block of output
  rows holding the motion tokens (see motiongpt.grammar_chooser).
- fast: the weights in fewer bytes, logits only for the tokens the motion grammar
  allows at each step, and a padded prompt read without its pads. Compiled on a CPU:
  int8 weights with a scale per row, every input float32 (weight-only quantization).
  In the torch loop: projections of the same input fused, each RMS norm's weight folded
  into the projection after it; on a CPU int8 weights through fbgemm's
  dynamic-quantization kernel (each input rounded to 8 bits), except the feed-forward
  output, whose input has T5's outliers (thousands): int8 weights with a bfloat16 input
  (torch's weight-only int8 kernel); on a GPU float16, that input scaled to at most 1
  first. The prompt's encoder is int8 on a CPU in both. Output differs from exact mode
  by rounding (the README has the measured cost in quality).

Threads, on a CPU: the compiled step splits each product's rows (and attention's heads)
between numba's threads, one or all of torch's count, whichever has been faster on this
machine lately: the decoder times its steps and keeps choosing (ThreadChoice). In the
torch loop the small per-token ops run on one thread (torch's pool makes each wait for
its second thread, milliseconds on a busy machine) and only the products take the
chosen count. Either way the numbers are the same (each output row is the same dot
product whichever thread computes it; tested), so the choice changes speed only.

`auto` (choose_mode) picks by the model's size: exact mode for small models (generate's
tokens, a few milliseconds a motion behind fast mode), fast mode where the weights
dominate.
"""

import copy
import time
import warnings
from dataclasses import dataclass
from functools import partial

import numba
import numba.typed
import numpy as np
import torch
from torch import nn
from transformers.activations import NewGELUActivation

from server.model import compiled_step

MODES = ("exact", "fast")

# `auto`: below this many decoder weights exact mode, at or above it fast mode. Fast mode
# is the faster at every size (benchmarks/decode.py --crossover, 2026-12-03, compiled
# steps: 0.50 against 0.35 ms a token at the embedded model's shape, 8.6 against 3.7 at
# the release's), but at the embedded size the difference is about 7 ms a 49-token
# motion (0.04 s in all), and exact mode gives generate's tokens up to float32 rounding:
# the samples the model card's evaluations measured. Above 8M weights the gap grows with
# the weights (1.04 against 0.45 ms at 8.3M), so fast mode.
AUTO_LOOP_MIN_DECODER_WEIGHTS = 8_000_000


class Cancelled(Exception):
    """Decoding stopped because the caller asked it to."""


def _projections(block):
    """A T5 decoder block's weight products, in the order both steps use: self-attention
    q, k, v and output, cross-attention q and output, the feed-forward's inputs (wi, or
    the gated wi_0 and wi_1) as a tuple, and its output wo. (Cross-attention's k and v are
    projected once per prompt, not per step.)"""
    self_attn, cross_attn, ff = block.layer[0].SelfAttention, block.layer[1].EncDecAttention, block.layer[2].DenseReluDense
    ff_in = (ff.wi_0, ff.wi_1) if hasattr(ff, "wi_0") else (ff.wi,)
    return self_attn.q, self_attn.k, self_attn.v, self_attn.o, cross_attn.q, cross_attn.o, ff_in, ff.wo


def decoder_weights(lm) -> int:
    """How many decoder weights one decoding step reads (cross-attention keys and values
    are projected once per prompt, the output layer only in the motion tokens' rows)."""
    total = 0
    for block in lm.decoder.block:
        q, k, v, o, cross_q, cross_o, ff_in, ff_out = _projections(block)
        total += sum(m.weight.numel() for m in (q, k, v, o, cross_q, cross_o, *ff_in, ff_out))
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


def streamed_product(x, weight):
    """One row `x` (1, in) times `weight` (out, in) transposed, as a batched product over
    the two halves of the weight's rows: the same dot products as `linear(x, weight)`,
    each summed in another order. On a CPU, torch's product of one row by a matrix
    (MKL's matrix-vector kernel) reads a matrix that is not in cache at 12-16 GB/s; the
    batched product streams it at 26-28 GB/s on one thread and 35 GB/s on two (measured
    at flan-t5-base's shapes, every layer's weights in turn). Each output is the same
    number however many threads or blocks compute it (tested); it differs from
    `linear`'s by float32 rounding (about 1e-6 of its size)."""
    rows = weight.shape[0]
    if rows % 2:
        return nn.functional.linear(x, weight)
    halves = weight.view(2, rows // 2, weight.shape[1])
    # The column is x transposed (its stride 1 along the row): torch picks its streaming
    # kernel for this layout; a contiguous column takes a path six times slower.
    return torch.bmm(halves, x.t().expand(2, -1, -1)).reshape(1, rows)


class _Linears:
    """Several projections of the same input in float32, each its own product, the
    model's own weight tensors (no copy). `streamed`: the CPU's faster product
    (streamed_product), else `linear` as `generate` computes it."""

    def __init__(self, weights, streamed: bool = False):
        self.weights = [w.detach() for w in weights]
        self.nbytes = sum(w.numel() * w.element_size() for w in self.weights)
        self.product = streamed_product if streamed else nn.functional.linear

    def __call__(self, x):
        return tuple(self.product(x, w) for w in self.weights)


def _per_projection(y, sizes):
    """A fused product's output split back into its projections' outputs."""
    return y.split(sizes, dim=-1) if len(sizes) > 1 else (y,)


class _Float16:
    """Projections of the same input fused into one float16 matrix, results in float32.

    With `scaled`, the input is divided by its largest magnitude before it is rounded to
    float16 and the output multiplied back: the feed-forward output's input can pass
    float16's range (65504) in T5 models."""

    def __init__(self, weights, scaled: bool = False):
        self.fused = torch.cat([w.detach() for w in weights], dim=0).to(torch.float16).contiguous()
        self.nbytes = self.fused.numel() * 2
        self.sizes = [w.shape[0] for w in weights]
        self.scaled = scaled

    def __call__(self, x):
        if self.scaled:
            scale = x.abs().amax().clamp_min(1e-12)
            x = x / scale
        y = nn.functional.linear(x.to(torch.float16), self.fused).float()
        if self.scaled:
            y = y * scale
        return _per_projection(y, self.sizes)


def _row_scales(weight):
    """The int8 scale of each row of a float32 matrix: its largest magnitude maps to 127."""
    return (weight.abs().amax(dim=1) / 127).clamp_min(1e-12)


def _int8_rows(weight):
    """(int8 weight, float32 scale per row) of a matrix: weight ~ int8 * scale[:, None]."""
    weight = weight.detach().float()
    scales = _row_scales(weight)
    return (weight / scales[:, None]).round().clamp(-127, 127).to(torch.int8).contiguous(), scales


class _Int8:
    """Projections of the same input fused into one int8 matrix with a scale per row,
    multiplied by fbgemm's dynamic-quantization kernel (the input is quantized to 8 bits
    per call, from its own range, so no activation overflows); float32 out. CPU only."""

    def __init__(self, weights):
        fused = torch.cat([w.detach() for w in weights], dim=0).float().contiguous()
        scales = _row_scales(fused).double()
        zero_points = torch.zeros(fused.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # torch marks its quantized tensors deprecated; fbgemm's kernel still takes
            # its weights as one (torch is pinned: the tests exercise this path).
            warnings.simplefilter("ignore", UserWarning)
            quantized = torch.quantize_per_channel(fused, scales, zero_points, 0, torch.qint8)
        self.packed = torch.ops.quantized.linear_prepack(quantized, None)
        self.nbytes = fused.numel() + fused.shape[0] * 8  # a byte per weight, a scale per row
        self.sizes = [w.shape[0] for w in weights]

    def __call__(self, x):
        y = torch.ops.quantized.linear_dynamic(x, self.packed, False)
        return _per_projection(y, self.sizes)


class _WeightInt8:
    """One projection in int8 with a scale per row, its input and output bfloat16 (torch's
    weight-only int8 kernel): bfloat16 has float32's range, so T5's feed-forward outliers
    (thousands) pass without the scaling float16 needs, and each value keeps 8 bits of
    its own. CPU only."""

    def __init__(self, weight):
        self.weight, scales = _int8_rows(weight)
        self.scales = scales.to(torch.bfloat16)
        self.nbytes = self.weight.numel() + self.scales.numel() * 2

    def __call__(self, x):
        return (torch._weight_int8pack_mm(x.to(torch.bfloat16), self.weight, self.scales).float(),)


class _CompiledInt8:
    """One projection in int8 with a scale per row and a float32 input, for several input
    rows at once (compiled_step.rows_product: each weight row read once for all of them).
    The encoder's feed-forward output's, whose input has T5's outliers: no input is
    rounded, and at the release's size a 24-token prompt takes 0.6 ms a layer where
    torch's weight-only int8 kernel (bfloat16 input) took 1.3. CPU only."""

    def __init__(self, weight):
        self.weight, scales = _int8_rows(weight)
        self.scales = scales.numpy()
        self.nbytes = self.weight.numel() + self.scales.nbytes

    def __call__(self, x):
        out = np.empty((x.shape[0], self.weight.shape[0]), np.float32)
        compiled_step.rows_product(self.weight.numpy(), self.scales, x.float().contiguous().numpy(), out)
        return (torch.from_numpy(out),)


class _ProductModule(nn.Module):
    """An nn.Linear's place in a copy of a Hugging Face module, computed by one of fast
    mode's products. `weight` is what Hugging Face's code inspects (its dtype)."""

    def __init__(self, product, weight):
        super().__init__()
        self.product = product
        self.weight = weight

    def forward(self, x):
        y = self.product(x.reshape(-1, x.shape[-1]))[0]
        return y.view(*x.shape[:-1], y.shape[-1])


def int8_encoder(encoder, compiled: bool = False):
    """A copy of a T5 encoder whose linear layers are int8 products (fast mode on a CPU),
    sharing every other weight with the original (norms, embeddings, position bias).
    `compiled`: the feed-forward output by compiled_step (where numba's threads start
    quickly), else by torch's weight-only int8 kernel.

    The prompt's encoding is the largest computation of a short decode: at the release's
    size its float32 products take about 55 ms for a 24-token prompt (compute-bound: 24
    rows per weight), 1 ms of every token of a 50-token motion."""
    shared = {id(parameter): parameter for parameter in encoder.parameters()}
    copied = copy.deepcopy(encoder, memo=shared)  # the module tree, not the weights
    for block in copied.block:
        attention, ff = block.layer[0].SelfAttention, block.layer[1].DenseReluDense
        for owner, name in [(attention, "q"), (attention, "k"), (attention, "v"), (attention, "o"),
                            *[(ff, n) for n in ("wi", "wi_0", "wi_1") if hasattr(ff, n)]]:
            product = _Int8([getattr(owner, name).weight])
            setattr(owner, name, _ProductModule(product, torch.empty(0, dtype=torch.int8)))
        # The feed-forward output's input has T5's outliers: float32 or bfloat16 input.
        ff_out = (_CompiledInt8 if compiled else _WeightInt8)(ff.wo.weight)
        ff.wo = _ProductModule(ff_out, ff_out.weight)
    return copied


@dataclass
class _CompiledWeights:
    """A decoder's weights as compiled_step.decoder_step reads them (numpy views)."""
    # numba typed lists, [kind][layer], kinds in decoder_step's order: passed to numba in
    # a few microseconds a call, where tuples of the 216 arrays took 25-40.
    weights: numba.typed.List
    scales: numba.typed.List  # the same, a float32 scale per row (ones for float32 weights)
    norms: np.ndarray  # (layers, 3, d_model)
    final_norm: np.ndarray
    position_bias: np.ndarray  # (heads, max length, max length)
    lm_head: np.ndarray  # float32, every row
    lm_head_scale: np.ndarray
    cross: list  # each layer's cross-attention key and value weights (the model's float32)
    activation: int  # compiled_step.RELU, GELU_TANH or GELU
    gated: bool
    nbytes: int  # what one step reads of weights and scales


def _typed_lists(kinds):
    return numba.typed.List([numba.typed.List(kind) for kind in kinds])


class ThreadChoice:
    """How many threads the weight products get, chosen by timing decoding steps: each
    candidate's recent seconds per step (a moving average), the faster one used. The
    leader is timed every step, so a neighbour's new load shows at once; the other is
    timed again after `recheck` steps, in case the load went away. Each recheck that
    finds it still slower doubles the wait, up to `longest_recheck` steps: a recheck runs
    a step at the slower count (fast mode's step at the release's size took 1.9x as long
    on one thread as on two here, so rechecking every 8 steps cost about 10%)."""

    def __init__(self, candidates, recheck: int = 8, longest_recheck: int = 64, smoothing: float = 0.3):
        self.candidates = sorted(set(candidates))
        self.recheck, self.longest_recheck = recheck, longest_recheck
        self.smoothing = smoothing
        self.seconds = {n: None for n in self.candidates}
        self.wait = recheck  # steps between rechecks now
        self.since_recheck = 0
        self.rechecking = None  # the count a recheck step is running

    def pick(self) -> int:
        unmeasured = [n for n in self.candidates if self.seconds[n] is None]
        if unmeasured:
            return unmeasured[0]
        ranked = sorted(self.candidates, key=lambda n: self.seconds[n])
        self.since_recheck += 1
        if len(ranked) > 1 and self.since_recheck >= self.wait:
            self.since_recheck = 0
            self.rechecking = ranked[1]
            return ranked[1]
        return ranked[0]

    def record(self, threads: int, seconds: float):
        previous, rechecked = self.seconds[threads], threads == self.rechecking
        if previous is None or rechecked:
            # A recheck's fresh time replaces an average that may be many steps old.
            self.seconds[threads] = seconds
        else:
            self.seconds[threads] = previous + self.smoothing * (seconds - previous)
        if rechecked:
            self.rechecking = None
            still_slower = self.seconds[threads] > min(self.seconds[n] for n in self.candidates if n != threads)
            self.wait = min(2 * self.wait, self.longest_recheck) if still_slower else self.recheck


class MotionDecoder:
    """Greedy or sampled decoding of one sequence with a T5ForConditionalGeneration, on
    the device the model is on."""

    def __init__(self, lm, mode: str = "exact", max_length: int = 260, fast_weights: str | None = None,
                 compiled: bool = True):
        if mode not in MODES:
            raise ValueError(f"decoding mode must be 'exact' or 'fast', got {mode!r}")
        if fast_weights not in (None, "int8", "float16"):
            raise ValueError(f"fast mode's weights are 'int8' (CPU) or 'float16', got {fast_weights!r}")
        self.lm = lm
        self.mode = mode
        self.max_length = max_length
        self.device = next(lm.parameters()).device
        config = lm.config
        self.heads, self.d_kv, self.eps = config.num_heads, config.d_kv, config.layer_norm_epsilon
        decoder = lm.decoder
        self.embed = decoder.embed_tokens.weight
        self.final_norm = decoder.final_layer_norm.weight
        # T5 scales the last hidden state when the output layer is tied to the embeddings.
        self.output_scale = config.d_model**-0.5 if config.tie_word_embeddings else 1.0
        self.lm_head = lm.lm_head.weight
        # int8 is the CPU's (the compiled step's, or fbgemm's in the torch loop); GPUs get float16.
        self.fast_weights = fast_weights or ("int8" if self.device.type == "cpu" else "float16")
        if self.fast_weights == "int8" and self.device.type != "cpu":
            raise ValueError(f"int8 fast mode runs on a CPU; the model is on {self.device}")
        # Weight products on one thread or on all of torch's, whichever is faster lately
        # (CPU only; a GPU runs them on itself).
        self.thread_choice = None
        with torch.no_grad():
            # Decoder self-attention is causal: the bias for query t over keys 0..t.
            attention = decoder.block[0].layer[0].SelfAttention
            self.position_bias = attention.compute_bias(max_length, max_length, device=self.device)[0]
        # On a CPU each step is one compiled call (compiled_step) where it can compute the
        # model; `compiled=False` keeps the torch loop (a GPU's; the tests compare the two).
        self.compiled = self._compiled_weights(decoder) \
            if compiled and self.device.type == "cpu" and self.fast_weights == "int8" else None
        self.encoder = int8_encoder(lm.encoder, compiled=self.compiled is not None) \
            if mode == "fast" and self.fast_weights == "int8" else lm.encoder
        self.layers = [] if self.compiled else [self._layer(block) for block in decoder.block]

    def _layer(self, block) -> _Layer:
        q, k, v, o, cross_q, cross_o, ff_in, ff_out = _projections(block)
        ff = block.layer[2].DenseReluDense
        gated = len(ff_in) == 2
        groups = [(q, k, v), (o,), (cross_q,), (cross_o,), ff_in, (ff_out,)]
        weights = [[m.weight.detach() for m in group] for group in groups]
        norms = [block.layer[0].layer_norm.weight, block.layer[1].layer_norm.weight, block.layer[2].layer_norm.weight]
        if self.mode == "fast":
            # An RMS norm's weight scales the columns of the projections after it: folded
            # into those, the loop normalizes without it (one operation fewer a norm).
            for index, norm in zip((0, 2, 4), norms):
                weights[index] = [w * norm.detach() for w in weights[index]]
            norms = [None, None, None]
            # The feed-forward output's input keeps its range: T5's activations there have
            # outliers in the thousands, and one input scale for 8 bits would round every
            # ordinary value next to such an outlier to zero. On a CPU its weights are
            # int8 with a bfloat16 input; float16 weights get the input scaled first.
            qkv, self_out, cross_q, cross_out, ff_in = (self._fast_product(w) for w in weights[:5])
            ff_out = _WeightInt8(weights[5][0]) if self.fast_weights == "int8" else _Float16(weights[5], scaled=True)
        else:
            streamed = self.device.type == "cpu"
            qkv, self_out, cross_q, cross_out, ff_in, ff_out = (_Linears(w, streamed) for w in weights)
        return _Layer(norms[0], qkv, self_out, norms[1], cross_q, cross_out, norms[2], ff_in, ff_out, ff.act, gated)

    def _compiled_weights(self, decoder) -> _CompiledWeights | None:
        """The decoder's weights as compiled_step.decoder_step reads them (exact mode: the
        model's own float32 tensors, no copy; fast mode: int8 with a scale per row), or
        None when the step cannot compute this model (an activation it does not know,
        weights that are not float32) or numba's threads are slow to start here: then the
        torch loop runs."""
        ff = decoder.block[0].layer[2].DenseReluDense
        activation = compiled_step.ACTIVATIONS.get(type(ff.act).__name__)
        if activation is None or self.embed.dtype != torch.float32 or not compiled_step.threads_start_quickly():
            return None
        gated = hasattr(ff, "wi_0")
        kinds = [[], [], [], [], [], [], [], [], []]
        for block in decoder.block:
            *attention, ff_in, ff_out = _projections(block)
            ff_in = ff_in if gated else ff_in * 2  # a non-gated step never reads the second
            for kind, module in zip(kinds, (*attention, *ff_in, ff_out)):
                kind.append(module.weight.detach())
        if self.mode == "fast":
            quantized = [[_int8_rows(w) for w in kind] for kind in kinds]
            weights = [[w.numpy() for w, _ in kind] for kind in quantized]
            scales = [[scale.numpy() for _, scale in kind] for kind in quantized]
        else:
            weights = [[w.contiguous().numpy() for w in kind] for kind in kinds]
            scales = [[np.ones(w.shape[0], np.float32) for w in kind] for kind in weights]
        norms = np.stack([np.stack([block.layer[i].layer_norm.weight.detach().numpy() for i in range(3)])
                          for block in decoder.block])
        read = range(9) if gated else (0, 1, 2, 3, 4, 5, 6, 8)
        nbytes = sum(w.nbytes + s.nbytes for i in read for w, s in zip(weights[i], scales[i]))
        cross = [tuple(getattr(block.layer[1].EncDecAttention, name).weight.detach().contiguous().numpy()
                       for name in ("k", "v")) for block in decoder.block]
        return _CompiledWeights(_typed_lists(weights), _typed_lists(scales), norms,
                                self.final_norm.detach().numpy(), self.position_bias.numpy(), self.lm_head.detach().numpy(),
                                np.ones(self.lm_head.shape[0], np.float32), cross, activation, gated, nbytes)

    def _fast_product(self, weights):
        """Projections of the same input as fast mode stores them: int8 on a CPU (unless
        asked for float16), float16 on a GPU."""
        return _Int8(weights) if self.fast_weights == "int8" else _Float16(weights)

    def weight_bytes(self, output_rows: int) -> int:
        """Bytes of weights one decoding step reads: every layer's projections as stored,
        and `output_rows` rows of the output layer (the motion tokens')."""
        products = self.compiled.nbytes if self.compiled else \
            sum(getattr(layer, name).nbytes for layer in self.layers
                for name in ("qkv", "self_out", "cross_q", "cross_out", "ff_in", "ff_out"))
        return products + output_rows * self.lm_head.shape[1] * self.lm_head.element_size()

    def _norm(self, x, weight):
        # T5's RMS norm: no mean, no bias, variance in float32. Without a weight (fast
        # mode folds it into the next product). torch's rms_norm took 25 us a call here
        # against 8 us for these operations.
        normalized = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return normalized if weight is None else weight * normalized

    @staticmethod
    def _attend(q, keys, values, bias):
        """T5 attention of one query row over `keys`: no 1/sqrt(d) scale, the position
        bias or padding mask added to the scores (heads, 1, keys) -> (1, heads x d_kv).
        Written out: torch's scaled_dot_product_attention gives the same bits but took
        95 us against 55 us for one row of the release's 12 heads (measured on a CPU)."""
        scores = q @ keys.transpose(-1, -2) + bias
        weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
        return (weights @ values).transpose(0, 1).reshape(1, -1)

    @staticmethod
    def _attend_fast(q, keys, values, bias):
        """_attend with the bias added inside the product (fewer operations, float32
        throughout: fast mode's weights are all that is rounded)."""
        weights = torch.softmax(torch.baddbmm(bias, q, keys.transpose(-1, -2)), dim=-1)
        return torch.bmm(weights, values).transpose(0, 1).reshape(1, -1)

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
        threads = torch.get_num_threads()
        if self.compiled:
            # The encoder's compiled products (fast mode) and the cross-attention's keys
            # and values take every thread; the steps then choose their own count.
            compiled_step.use_threads(threads)
        encoder_out = self.encoder(**encoder_inputs).last_hidden_state[0]
        # Masked encoder positions (padding) get the most negative number in cross-attention.
        cross_mask = torch.zeros(1, 1, encoder_out.shape[0], device=self.device) if attention_mask is None else \
            (1.0 - attention_mask[:1, None].to(encoder_out.dtype)) * torch.finfo(encoder_out.dtype).min
        if self.compiled:
            cross = self._compiled_cross(encoder_out)
        else:
            cross = []
            for block in self.lm.decoder.block:
                attn = block.layer[1].EncDecAttention
                cross.append((self._heads(attn.k(encoder_out)), self._heads(attn.v(encoder_out))))

        if self.device.type == "cpu":
            # One row at a time is too little work for torch's thread pool: its tiny ops
            # (attention over 12 heads, a softmax over a few keys) wait for the pool's
            # other thread, milliseconds each on a busy machine (profiled: bmm 7 ms,
            # softmax 10 ms on average). Only the weight products may use more threads.
            if self.thread_choice is None or self.thread_choice.candidates != sorted({1, threads}):
                self.thread_choice = ThreadChoice((1, threads))
            torch.set_num_threads(1)
        try:
            advance = self._compiled_step(cross, cross_mask, max_new_tokens) if self.compiled else \
                self._torch_step(cross, cross_mask, max_new_tokens)
            return self._steps(advance, choose, max_new_tokens, stop_ids, should_stop)
        finally:
            torch.set_num_threads(threads)

    def _steps(self, advance, choose, max_new_tokens, stop_ids, should_stop):
        """The loop both kinds of step share: cancellation, the thread choice (CPU), the
        token choice and stopping. `advance(step, token, threads)` runs the decoder for
        `token` at position `step` and returns (final hidden state, logits(lo, hi))."""
        choice = self.thread_choice if self.device.type == "cpu" else None
        token = self.lm.config.decoder_start_token_id
        out = []
        for step in range(max_new_tokens):
            if should_stop is not None and should_stop():
                raise Cancelled("decoding was cancelled")
            threads = choice.pick() if choice is not None else 1
            started = time.perf_counter()
            final, logits = advance(step, token, threads)
            token = int(choose(step, final, logits))
            if choice is not None:
                choice.record(threads, time.perf_counter() - started)
            out.append(token)
            if token in stop_ids:
                break
        return out

    def _compiled_cross(self, encoder_out):
        """Every layer's cross-attention keys and values for the prompt, each (layers,
        heads, prompt tokens, d_kv), by compiled_step.rows_product: each weight read once
        for all the prompt's tokens (24 tokens at the release's size: 5 ms where torch's
        48 products took 10)."""
        x = encoder_out.float().contiguous().numpy()
        layers, tokens = len(self.compiled.cross), x.shape[0]
        out = np.empty((2, layers, tokens, self.heads * self.d_kv), np.float32)
        ones = np.ones(out.shape[-1], np.float32)
        for layer, weights in enumerate(self.compiled.cross):
            for kind, weight in enumerate(weights):
                compiled_step.rows_product(weight, ones, x, out[kind, layer])
        keys, values = out.reshape(2, layers, tokens, self.heads, self.d_kv).transpose(0, 1, 3, 2, 4)
        return np.ascontiguousarray(keys), np.ascontiguousarray(values)

    def _compiled_step(self, cross, cross_mask, max_new_tokens):
        """`advance` for _steps: one call of compiled_step.decoder_step a token (CPU).
        `cross`: (keys, values) from _compiled_cross."""
        c = self.compiled
        layers, heads, d_kv = c.norms.shape[0], self.heads, self.d_kv
        cross_keys, cross_values = cross
        cross_bias = cross_mask[0].expand(heads, -1).contiguous().numpy()
        # The step writes position t's keys and values before it reads positions 0..t.
        keys = np.empty((layers, heads, max_new_tokens, d_kv), np.float32)
        values = np.empty_like(keys)
        embed = self.embed.detach().numpy()
        eps, output_scale = np.float32(self.eps), np.float32(self.output_scale)
        threads_now = None

        def advance(step, token, threads):
            nonlocal threads_now
            if threads != threads_now:
                compiled_step.use_threads(threads)
                threads_now = threads
            final = compiled_step.decoder_step(
                embed[token], step, c.weights, c.scales, c.norms, c.final_norm, keys, values, c.position_bias,
                cross_keys, cross_values, cross_bias, eps, c.activation, c.gated)
            final *= output_scale

            def logits(lo=0, hi=None):
                rows = c.lm_head[lo:hi]
                result = np.empty(rows.shape[0], np.float32)
                compiled_step.product(rows, c.lm_head_scale[lo:hi], final, result)
                return torch.from_numpy(result)

            return torch.from_numpy(final), logits

        return advance

    def _torch_step(self, cross, cross_mask, max_new_tokens):
        """`advance` for _steps: the step as torch operations (a GPU's, and the fallback)."""
        keys = torch.zeros(len(self.layers), self.heads, max_new_tokens, self.d_kv, device=self.device)
        values = torch.zeros_like(keys)
        heads, d_kv = self.heads, self.d_kv
        # Fast mode computes T5's tanh GELU ("gelu_new") as torch's one op: equal to a
        # few units in the last place, so exact mode keeps the model's own module.
        acts = [partial(nn.functional.gelu, approximate="tanh")
                if self.mode == "fast" and isinstance(layer.act, NewGELUActivation) else layer.act
                for layer in self.layers]
        attend = self._attend_fast if self.mode == "fast" else self._attend
        # Exact mode's logits are linear's, bit for bit generate's from the same hidden
        # state (motiongpt.grammar_chooser); fast mode streams the rows it asks for.
        output_product = streamed_product if self.mode == "fast" and self.device.type == "cpu" else nn.functional.linear

        def advance(step, token, threads):
            def product(function, x):
                # Only the weight products take more than the loop's one thread.
                if threads == 1:
                    return function(x)
                torch.set_num_threads(threads)
                try:
                    return function(x)
                finally:
                    torch.set_num_threads(1)

            hidden = self.embed[token][None]  # (1, d_model)
            bias = self.position_bias[:, step : step + 1, : step + 1]
            for index, layer in enumerate(self.layers):
                q, k, v = product(layer.qkv, self._norm(hidden, layer.self_norm))
                keys[index, :, step] = k.view(heads, d_kv)
                values[index, :, step] = v.view(heads, d_kv)
                context = attend(self._heads(q), keys[index, :, : step + 1], values[index, :, : step + 1], bias)
                hidden = hidden + product(layer.self_out, context)[0]

                query = self._heads(product(layer.cross_q, self._norm(hidden, layer.cross_norm))[0])
                context = attend(query, *cross[index], cross_mask)
                hidden = hidden + product(layer.cross_out, context)[0]

                projected = product(layer.ff_in, self._norm(hidden, layer.ff_norm))
                inner_state = acts[index](projected[0])
                if layer.gated:
                    inner_state = inner_state * projected[1]
                hidden = hidden + product(layer.ff_out, inner_state)[0]
            final = self._norm(hidden, self.final_norm)[0] * self.output_scale

            def logits(lo=0, hi=None):
                return output_product(final[None], self.lm_head[lo:hi])[0].float().cpu()

            return final, logits

        return advance
