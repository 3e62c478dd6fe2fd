"""MotionGPT: a motion VQ-VAE and a T5 model that reads and writes text and motion tokens.

The four tasks are prompts, the release's evaluation templates (the team's notes on
the release, motiongpt-compat.md, list them with its generation settings):

    generate   "Generate motion: <caption>"              -> motion tokens
    caption    "Generate text: <motion>"                 -> text
    predict    "Predict motion: <motion prefix>"         -> continuation tokens
    inbetween  "Complete the masked motion: <masked>"    -> the whole motion, middle filled

Motions go in and come out as joint positions (T, 22, 3) at 20 fps in the caller's own
world frame; features, normalization and tokens stay inside.

How a model is asked (prompt padding, caption length, the prediction window, the
in-between mask) follows its contract (retarget.contract.ModelContract): the project's
for models this project trains, the official code's for MotionGPT's release.
"""

from dataclasses import dataclass

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList, T5Config, T5ForConditionalGeneration

from retarget.contract import (FRAMES_PER_TOKEN, MAX_MOTION_TOKENS, MAX_TEXT_CHARS, MIN_INBETWEEN_FRAMES, MIN_INPUT_FRAMES,
                               ModelContract, model_contract, motion_string, motion_token_strings, prompt)
from retarget.humanml3d import FPS, canonical_transform, features_from_joints, joints_from_features, to_reference_skeleton
from retarget.motion import validate_positions
from retarget.rotation import quat_conj, quat_rotate

from .decoding import Cancelled, MotionDecoder
from .text_encoder import PromptEmbedder, SentenceEncoder
from .vqvae import VQVAE, VQVAEConfig

# "hf": Hugging Face generate; "exact": this project's loop, same greedy tokens;
# "fast": the loop with int8 weights and logits over allowed tokens only.
DECODING_MODES = ("hf", "exact", "fast")


@dataclass
class Sampling:
    """How motion tokens are chosen: greedy, or sampled from the top_k most likely at
    `temperature`."""

    greedy: bool = False
    top_k: int = 50
    temperature: float = 1.0

    def with_choices(self, top_k: int | None = None, temperature: float | None = None,
                     greedy: bool = False) -> "Sampling":
        """These defaults with what a request chose (None: not chosen)."""
        return Sampling(greedy=greedy or self.greedy, top_k=self.top_k if top_k is None else top_k,
                        temperature=self.temperature if temperature is None else float(temperature))

    def validate(self):
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


class MotionGrammar(LogitsProcessor):
    """Keeps generated motion well formed: motion start, then codes, then motion end.

    With `length` the motion has exactly that many codes; without it the model decides
    when to end (at least one code, at most `max_codes`).
    """

    def __init__(self, first_code_id: int, codebook_size: int, length: int | None, max_codes: int):
        self.first = first_code_id
        self.size = codebook_size
        self.start = first_code_id + codebook_size
        self.end = self.start + 1
        self.length = length
        self.max_codes = max_codes

    def allowed(self, step: int) -> tuple[int, int, bool]:
        """(first id, last id + 1, end allowed) of the codes allowed at decoder step
        `step` (0 is the decoder start token, so step 1 writes the motion start)."""
        codes_written = step - 2
        if step == 1:
            return self.start, self.start + 1, False
        limit = self.length if self.length is not None else self.max_codes
        if codes_written >= limit:
            return self.end, self.end + 1, True
        end_ok = self.length is None and codes_written >= 1
        return self.first, self.first + self.size, end_ok

    def __call__(self, input_ids, scores):
        lo, hi, end_ok = self.allowed(input_ids.shape[1])
        mask = torch.full_like(scores, float("-inf"))
        mask[:, lo:hi] = 0.0
        if end_ok:
            mask[:, self.end] = 0.0
        return scores + mask


class TextOnly(LogitsProcessor):
    """Bans motion tokens: a caption is text."""

    def __init__(self, first_motion_id: int, count: int):
        self.lo, self.hi = first_motion_id, first_motion_id + count

    def __call__(self, input_ids, scores):
        scores[:, self.lo:self.hi] = float("-inf")
        return scores


class StopWhenAsked(LogitsProcessor):
    """Asks `should_stop()` at every step of Hugging Face's generate (which has no other
    per-token hook) and stops decoding with Cancelled when it says so."""

    def __init__(self, should_stop):
        self.should_stop = should_stop

    def __call__(self, input_ids, scores):
        if self.should_stop():
            raise Cancelled("decoding was cancelled")
        return scores


def grammar_chooser(grammar: MotionGrammar, mode: str, sampling: Sampling, generator: torch.Generator):
    """The token choice for MotionDecoder.decode under the motion grammar.

    Motion tokens are the last rows of the vocabulary, so both modes compute logits
    only for the tail of the output layer that holds them. In exact mode the tail
    starts at a multiple of 16 rows and runs to the end of the matrix: the kernel then
    blocks those rows as in the full product, so each logit is bit for bit the one
    `generate` computes from the same hidden state (exact mode's hidden state itself
    differs from generate's by float32 rounding on a CPU: decoding.streamed_product).
    Fast mode asks for the allowed rows only.
    """
    tail_start = (grammar.first // 16) * 16

    def choose(step, hidden, logits):
        lo, hi, end_ok = grammar.allowed(step + 1)
        if mode == "fast":
            scores, ids = logits(lo, hi), torch.arange(lo, hi)
            if end_ok:
                scores = torch.cat([scores, logits(grammar.end, grammar.end + 1)])
                ids = torch.cat([ids, torch.tensor([grammar.end])])
            return _pick(scores, ids, sampling, generator)
        tail = logits(tail_start, None)
        scores = torch.full_like(tail, float("-inf"))
        scores[lo - tail_start : hi - tail_start] = tail[lo - tail_start : hi - tail_start]
        if end_ok:
            scores[grammar.end - tail_start] = tail[grammar.end - tail_start]
        return _pick(scores, torch.arange(tail_start, tail_start + len(tail)), sampling, generator)

    return choose


def _pick(scores: torch.Tensor, ids, sampling: Sampling, generator: torch.Generator) -> int:
    """The next token from scores over `ids` (None: scores index the vocabulary)."""
    if sampling.greedy:
        best = int(torch.argmax(scores))
    else:
        scores = scores / sampling.temperature
        k = min(sampling.top_k, int(torch.isfinite(scores).sum()))
        top, where = torch.topk(scores, k)
        best = int(where[torch.multinomial(torch.softmax(top, dim=-1), 1, generator=generator)])
    return best if ids is None else int(ids[best])


class MotionGPT:
    def __init__(self, vae: VQVAE, lm: T5ForConditionalGeneration, tokenizer, mean, std, name: str = "motiongpt",
                 decoding: str = "exact", prompt_embedder=None, contract: str | ModelContract | None = None):
        if decoding not in DECODING_MODES:
            raise ValueError(f"decoding must be one of {', '.join(DECODING_MODES)}, got {decoding!r}")
        self.decoding = decoding
        self._decoders = {}
        self.vae = vae.eval()
        self.lm = lm.eval()
        self.tokenizer = tokenizer
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.name = name
        # None: prompts are tokenized as MotionGPT does; else a text_encoder.PromptEmbedder
        # reads their words through a pretrained sentence encoder.
        self.prompt_embedder = prompt_embedder
        # How this model is asked: the project's contract (None) or the release's.
        self.contract = contract if isinstance(contract, ModelContract) else model_contract(contract)
        # What a request that does not choose gets (a model's config may record its own:
        # the embedded model samples at temperature 0.7, where its motions follow prompts
        # more often; MotionGPT's release keeps Hugging Face's 1.0).
        self.default_sampling = Sampling()
        if vae.config.frames_per_token != FRAMES_PER_TOKEN:
            raise ValueError(f"the motion tokenizer covers {vae.config.frames_per_token} frames per token; the server "
                             f"and the extension plan with {FRAMES_PER_TOKEN} (retarget.contract)")
        size = vae.config.codebook_size
        ids = tokenizer.convert_tokens_to_ids(motion_token_strings(size))
        if ids != list(range(ids[0], ids[0] + size + 3)):
            raise ValueError("the tokenizer's motion tokens are missing or not consecutive")
        if lm.config.vocab_size < ids[-1] + 1:
            raise ValueError(f"the language model's vocabulary ({lm.config.vocab_size}) has no room for motion tokens up to id {ids[-1]}")
        self.first_code_id = ids[0]
        if self.mean.shape != (vae.config.feature_size,) or self.std.shape != (vae.config.feature_size,):
            raise ValueError(f"normalization statistics must have shape ({vae.config.feature_size},)")

    # --- building -----------------------------------------------------------------

    @classmethod
    def untrained(cls, tokenizer, vae_config: VQVAEConfig, t5_config: dict, mean=None, std=None,
                  name: str = "untrained", seed: int = 0, text_encoder: str | None = None) -> "MotionGPT":
        """A model with fresh weights: the starting point of training (and of tests).
        With `text_encoder` (a name in text_encoder.TEXT_ENCODERS) it reads prompts
        through that pretrained encoder."""
        torch.manual_seed(seed)
        config = T5Config(**{**t5_config, "vocab_size": len(tokenizer), "tie_word_embeddings": False,
                             "decoder_start_token_id": tokenizer.pad_token_id,
                             "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id})
        lm = T5ForConditionalGeneration(config)
        vae = VQVAE(vae_config)
        with torch.no_grad():
            vae.quantizer.codebook.normal_()
        features = vae_config.feature_size
        mean = np.zeros(features, np.float32) if mean is None else mean
        std = np.ones(features, np.float32) if std is None else std
        model = cls(vae, lm, tokenizer, mean, std, name)
        if text_encoder:
            model.read_prompts_with(text_encoder)
        return model

    def read_prompts_with(self, text_encoder: str, instructions=()) -> None:
        """Read prompts through the pretrained `text_encoder` from now on, with a fresh
        projection (training a model that reads text this way, or turning one that
        tokenizes its prompts into one that does: its motion side is kept)."""
        encoder = SentenceEncoder(text_encoder)
        self.lm.prompt_projection = PromptEmbedder.projection_for(encoder, self.lm.config.d_model)
        self.prompt_embedder = PromptEmbedder(encoder, self.lm, self.tokenizer, instructions)

    # --- sizes ----------------------------------------------------------------------

    @property
    def codebook_size(self) -> int:
        return self.vae.config.codebook_size

    @property
    def frames_per_token(self) -> int:
        return self.vae.config.frames_per_token

    def describe(self) -> dict:
        c = self.lm.config
        return {
            "name": self.name,
            "contract": self.contract.name,
            "text_encoder": self.prompt_embedder.encoder.name if self.prompt_embedder else None,
            # What a request that does not choose gets (the model's config.json "sampling").
            "sampling": {"top_k": self.default_sampling.top_k, "temperature": self.default_sampling.temperature},
            "language_model": {
                "encoder_layers": c.num_layers, "decoder_layers": c.num_decoder_layers, "d_model": c.d_model,
                "d_ff": c.d_ff, "heads": c.num_heads, "d_kv": c.d_kv, "feed_forward": c.feed_forward_proj,
                "vocabulary": c.vocab_size, "text_vocabulary": self.first_code_id,
                "motion_tokens": self.codebook_size + 3,
            },
            "motion_tokenizer": {
                "codebook_size": self.codebook_size, "code_dim": self.vae.config.code_dim,
                "width": self.vae.config.width, "frames_per_token": self.frames_per_token,
            },
            "parameters": {
                "language_model": sum(p.numel() for p in self.lm.parameters()),
                "motion_tokenizer": sum(p.numel() for p in self.vae.parameters()) + self.vae.quantizer.codebook.numel(),
            },
        }

    # --- motion <-> tokens ------------------------------------------------------------

    def _normalize(self, features: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((features - self.mean) / self.std).astype(np.float32))

    def codes_from_features(self, features: np.ndarray) -> list[int]:
        with torch.inference_mode():
            return self.vae.encode(self._normalize(features)[None])[0].tolist()

    def features_from_codes(self, codes: list[int]) -> np.ndarray:
        with torch.inference_mode():
            normalized = self.vae.decode(torch.tensor([codes], dtype=torch.long))[0].numpy()
        return normalized * self.std + self.mean

    # --- generation core ------------------------------------------------------------

    def prompt_inputs(self, prompts: list[str], max_tokens: int | None = None) -> dict:
        """Prompts as the T5 encoder's input: token ids, or embeddings for a model that
        reads its words through a pretrained encoder; with the attention mask.

        Token ids are truncated at `max_tokens` (None: the contract's limit). Under the
        official contract every prompt is padded to that many tokens, as the official
        code calls its tokenizer: the pads are masked, but cross-attention over 256 keys
        rounds differently from attention over the prompt's own, by up to 1e-4 in the
        logits, which is enough to flip a near tie in the release's choices."""
        if self.prompt_embedder is not None:
            return self.prompt_embedder(prompts)
        limit = max_tokens or self.contract.prompt_tokens
        padding = "max_length" if self.contract.pad_prompts else True
        batch = self.tokenizer(prompts, return_tensors="pt", padding=padding, truncation=True, max_length=limit)
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}

    def _encode_prompt(self, prompt: str) -> dict:
        # On the language model's device (a GPU with --device; server/device.py).
        return {name: value.to(self.lm.device) for name, value in self.prompt_inputs([prompt]).items()}

    def decoder(self, mode: str) -> MotionDecoder:
        """The decoding loop for `mode` ("exact" or "fast"), built once per model."""
        if mode not in self._decoders:
            self._decoders[mode] = MotionDecoder(self.lm, mode, max_length=MAX_MOTION_TOKENS + 4)
        return self._decoders[mode]

    def warm_up(self) -> None:
        """Build the decoder of this model's decoding mode and decode a few tokens, so that a
        server's first request does not wait for it: fast mode's int8 weights (about 1.5 s
        at the release's size) and, the first time after an install, compiling the CPU's
        decoder step (compiled_step: seconds, then cached by numba)."""
        if self.decoding != "hf":
            self.motion_tokens("warm up", 2, Sampling(greedy=True), seed=0)

    def motion_tokens(self, prompt: str, length: int | None, sampling: Sampling, seed: int | None,
                      max_codes: int = MAX_MOTION_TOKENS, should_stop=None) -> list[int]:
        """Decode motion codes for a prompt. `should_stop()` is asked before every token
        (cancellation); a stopped decode raises Cancelled."""
        grammar = MotionGrammar(self.first_code_id, self.codebook_size, length, max_codes)
        limit = (length if length is not None else max_codes) + 2
        if self.decoding == "hf":
            out = self._motion_tokens_hf(prompt, grammar, limit, sampling, seed, should_stop)
        else:
            generator = torch.Generator().manual_seed(seed if seed is not None else 0)
            choose = grammar_chooser(grammar, self.decoding, sampling, generator)
            encoded = self._encode_prompt(prompt)
            out = self.decoder(self.decoding).decode(encoded, choose, limit, stop_ids={grammar.end},
                                                     should_stop=should_stop)
        lo, hi = self.first_code_id, self.first_code_id + self.codebook_size
        return [t - lo for t in out if lo <= t < hi]

    def _motion_tokens_hf(self, prompt, grammar, limit, sampling, seed, should_stop=None) -> list[int]:
        """Hugging Face `generate`: the reference the decoding loop is measured against
        (`--decoding hf`); asks `should_stop()` every token as the loop does (progress and
        cancellation)."""
        processors = [grammar] if should_stop is None else [StopWhenAsked(should_stop), grammar]
        options = dict(max_new_tokens=limit, logits_processor=LogitsProcessorList(processors),
                       eos_token_id=grammar.end, pad_token_id=self.tokenizer.pad_token_id)
        if sampling.greedy:
            options.update(do_sample=False, num_beams=1)
        else:
            options.update(do_sample=True, top_k=sampling.top_k, temperature=sampling.temperature)
            if seed is not None:
                torch.manual_seed(seed)
        with torch.inference_mode():
            return self.lm.generate(**self._encode_prompt(prompt), **options)[0].tolist()[1:]

    # --- the four tasks ---------------------------------------------------------------

    def generate(self, text: str, frames: int | None = None, samples: int = 1, seed: int = 0,
                 sampling: Sampling | None = None, should_stop=None) -> list[np.ndarray]:
        """Text -> `samples` motions, joint positions (T, 22, 3) at 20 fps. `frames` is
        rounded down to whole tokens (4 frames); None lets the model decide.
        `should_stop()` is asked before every token (cancellation and progress)."""
        text = _validate_text(text)
        sampling = sampling or self.default_sampling
        sampling.validate()
        length = None if frames is None else self._tokens_for_frames(frames)
        if not 1 <= samples <= 16:
            raise ValueError(f"samples must be between 1 and 16, got {samples}")
        return [joints_from_features(self.generated_features(text, length, sampling, seed + sample, should_stop))
                for sample in range(samples)]

    def generated_features(self, text: str, tokens: int | None, sampling: Sampling, seed: int,
                           should_stop=None) -> np.ndarray:
        """Text -> HumanML3D features (unnormalized) of `tokens` motion tokens (None: the
        model decides); what `generate` turns into joints, and what evaluation measures."""
        codes = self.motion_tokens(prompt("text_to_motion", text=text), tokens, sampling, seed, should_stop=should_stop)
        return self.features_from_codes(codes)

    def caption(self, joints, should_stop=None) -> str:
        """Motion -> text (greedy, as the release captions). `should_stop()` is asked
        before every token (cancellation and progress)."""
        features, _ = self._features_of(joints)
        codes = self.codes_from_features(_crop_to_tokens(features, self.frames_per_token, keep="start"))
        asked = prompt("motion_to_text", motion=motion_string(codes, self.codebook_size))
        processors = [TextOnly(self.first_code_id, self.codebook_size + 3)]
        if should_stop is not None:
            processors.insert(0, StopWhenAsked(should_stop))
        with torch.inference_mode():
            out = self.lm.generate(**self._encode_prompt(asked), do_sample=False, num_beams=1,
                                   max_new_tokens=self.contract.caption_max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                   logits_processor=LogitsProcessorList(processors))
        return self.tokenizer.decode(out[0], skip_special_tokens=True).strip()

    def predict(self, joints, frames: int, text: str | None = None, seed: int = 0,
                sampling: Sampling | None = None, should_stop=None) -> np.ndarray:
        """Motion -> the same motion followed by `frames` more frames (T + frames', 22, 3);
        the given frames come back unchanged."""
        positions = validate_positions(joints)
        sampling = sampling or self.default_sampling
        sampling.validate()
        features, frame = self._features_of(positions)
        # Tokens cover whole 4-frame steps; drop the oldest frames, keep the newest.
        given = _crop_to_tokens(features, self.frames_per_token, keep="end")
        codes = self.codes_from_features(given)
        new = self._tokens_for_frames(frames)
        continuation = self.continuation(codes, new, _validate_text(text) if text else None, sampling, seed, should_stop)
        # Decode the whole sequence so the continuation joins the given motion smoothly.
        decoded = joints_from_features(self.features_from_codes(codes + continuation))
        tail = decoded[len(codes) * self.frames_per_token:]
        # Put the continuation where the given motion ends: its own recovery starts at
        # the origin, so align the decoded frame before it with the last given frame.
        anchor = decoded[len(codes) * self.frames_per_token - 1]
        tail = _move_to(tail, anchor, frame.canonical(positions[-1]))
        return np.concatenate([positions, frame.to_world(tail)])

    def continuation(self, codes: list[int], wanted: int, text: str | None, sampling: Sampling, seed: int,
                     should_stop=None) -> list[int]:
        """`wanted` codes that continue `codes`.

        Project contract: the model reads every given code and writes exactly `wanted`.
        Official contract: the release learned to continue the first 20% of a motion with
        the rest, choosing the length itself, so it reads only the window of newest codes
        it was trained on (ModelContract.prediction_window: a fifth of the motion the
        continuation completes, at most 9 codes) and decides how long to go on. Its
        choice is kept up to `wanted`: decoding stops there (with the grammar's end
        forced), which gives the same codes as cropping a longer answer, without
        decoding what would be cropped. If it ends sooner, it is asked again, with the
        window slid over the codes written so far, until `wanted` are there: every
        request is still one it was trained on, and the motion is continued, not
        stretched or repeated."""
        if not self.contract.model_decides_prediction_length:
            asked = prompt("prediction", motion=motion_string(codes, self.codebook_size), text=text)
            return self.motion_tokens(asked, wanted, sampling, seed, should_stop=should_stop)
        written = []
        for round_ in range(wanted):  # every round writes at least one code
            if len(written) >= wanted:
                break
            known = codes + written
            window = known[len(known) - self.contract.prediction_window(len(known), wanted - len(written)):]
            asked = prompt("prediction", motion=motion_string(window, self.codebook_size), text=text)
            written += self.motion_tokens(asked, None, sampling, seed + round_, max_codes=wanted - len(written),
                                          should_stop=should_stop)
        return written

    def inbetween(self, joints, mask_start: int, mask_end: int, text: str | None = None, seed: int = 0,
                  sampling: Sampling | None = None, should_stop=None) -> np.ndarray:
        """Motion with frames [mask_start, mask_end) to fill -> the motion with them filled;
        every frame outside the mask comes back unchanged."""
        positions = validate_positions(joints)
        if not 0 < mask_start < mask_end < len(positions):
            raise ValueError(f"the mask [{mask_start}, {mask_end}) must lie inside the motion's frames "
                             f"1..{len(positions) - 1} with known frames on both sides")
        sampling = sampling or self.default_sampling
        sampling.validate()
        features, frame = self._features_of(positions)
        step = self.frames_per_token
        usable = (len(features) // step) * step
        if len(positions) < MIN_INBETWEEN_FRAMES:
            raise ValueError(f"in-betweening needs at least {MIN_INBETWEEN_FRAMES} frames, got {len(positions)}")
        codes = self.codes_from_features(features[:usable])
        masked = set(self.contract.inbetween_codes(mask_start, mask_end, len(codes)))
        if not masked:
            raise ValueError(f"the mask [{mask_start}, {mask_end}) starts after the motion's last whole token "
                             f"(frame {len(codes) * step})")
        if len(masked) == len(codes):
            raise ValueError("the mask covers the whole motion; use generate instead")
        asked = prompt("inbetween", motion=motion_string(codes, self.codebook_size, masked),
                       text=_validate_text(text) if text else None)
        filled = self.motion_tokens(asked, len(codes), sampling, seed, should_stop=should_stop)
        combined = [filled[i] if i in masked else c for i, c in enumerate(codes)]
        decoded = frame.to_world(joints_from_features(self.features_from_codes(combined)))
        # Bring the decoded motion onto the given one at the frame before the gap, then
        # keep every given frame as it was.
        decoded = _move_to(decoded, decoded[mask_start - 1], positions[mask_start - 1])
        # Anchored before the gap, the fill's path drifts by the gap's end: spread the
        # ground-plane miss at the frame after the gap over the gap, so it meets both ends.
        if mask_end < len(decoded):
            miss = positions[mask_end, 0] - decoded[mask_end, 0]
            miss[1] = 0.0
            ramp = np.arange(1, mask_end - mask_start + 1) / (mask_end - mask_start + 1)
            decoded[mask_start:mask_end] += ramp[:, None, None] * miss
        result = positions.copy()
        result[mask_start:mask_end] = decoded[mask_start:mask_end]
        return result

    # --- helpers ------------------------------------------------------------------------

    def _tokens_for_frames(self, frames: int) -> int:
        step = self.frames_per_token
        if not isinstance(frames, (int, np.integer)) or frames < step:
            raise ValueError(f"frames must be a whole number of at least {step}, got {frames}")
        tokens = int(frames) // step
        if tokens > MAX_MOTION_TOKENS:
            raise ValueError(f"at most {MAX_MOTION_TOKENS * step} frames ({MAX_MOTION_TOKENS * step / FPS:g} s), got {frames}")
        return tokens

    def _features_of(self, joints):
        positions = validate_positions(joints)
        if len(positions) < MIN_INPUT_FRAMES:
            raise ValueError(f"a motion needs at least {MIN_INPUT_FRAMES} frames to be tokenized, got {len(positions)}")
        return features_from_joints(positions), CanonicalFrame.of(positions)


class CanonicalFrame:
    """The transform HumanML3D applies to a clip (floor at zero, first frame over the
    origin facing +Z), so decoded motion can be put back where the input was. The
    canonical clip is rebuilt on the reference skeleton, so this maps positions, not
    proportions."""

    def __init__(self, offset: np.ndarray, facing: np.ndarray):
        self.offset = offset
        self.facing = facing

    @classmethod
    def of(cls, positions: np.ndarray) -> "CanonicalFrame":
        return cls(*canonical_transform(to_reference_skeleton(positions)))

    def canonical(self, world: np.ndarray) -> np.ndarray:
        return quat_rotate(self.facing, world - self.offset)

    def to_world(self, canonical: np.ndarray) -> np.ndarray:
        return quat_rotate(quat_conj(self.facing), canonical) + self.offset


def _move_to(joints: np.ndarray, anchor: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Translate `joints` on the ground plane so the pelvis of pose `anchor` lands on
    the pelvis of pose `target`."""
    shift = target[0] - anchor[0]
    shift[1] = 0.0
    return joints + shift


def _crop_to_tokens(features: np.ndarray, step: int, keep: str) -> np.ndarray:
    usable = (len(features) // step) * step
    return features[:usable] if keep == "start" else features[len(features) - usable:]


def _validate_text(text) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the text is too long: {len(text)} characters, at most {MAX_TEXT_CHARS}")
    return text.strip()
