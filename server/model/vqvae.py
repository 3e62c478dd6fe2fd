"""The motion tokenizer: a 1-D convolutional VQ-VAE over HumanML3D features.

Module names and nesting follow MotionGPT's released model exactly, so its state dict
(the `vae.` keys of the official checkpoint, listed in official_vae_keys.json) loads
without renaming; weight-free layers (ReLU, upsampling) keep their places in the
`nn.Sequential` indices for the same reason. Width, depth and codebook size are
configurable, so the project's small models use the same code.

    features (B, T, 263) -> encoder -> (B, width, T/4) -> nearest code -> tokens (B, T/4)
    tokens -> codebook vectors -> decoder -> features (B, T, 263)
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class VQVAEConfig:
    feature_size: int = 263
    width: int = 512  # channels of every conv layer
    code_dim: int = 512  # dimension of a codebook vector (the encoder's output)
    codebook_size: int = 512
    down_t: int = 2  # temporal halvings: 2 -> 4 frames per token
    depth: int = 3  # residual blocks per stage
    dilation_growth_rate: int = 3  # dilations 9, 3, 1 for depth 3

    @property
    def frames_per_token(self) -> int:
        return 2 ** self.down_t

    def to_dict(self) -> dict:
        return asdict(self)


class ResidualBlock(nn.Module):
    """ReLU, dilated conv (kernel 3), ReLU, 1x1 conv, plus the input."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(width, width, 1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class ResidualStack(nn.Module):
    def __init__(self, width: int, depth: int, growth: int):
        super().__init__()
        # Largest dilation first, as the released model runs them.
        dilations = [growth**i for i in range(depth)][::-1]
        self.model = nn.Sequential(*[ResidualBlock(width, d) for d in dilations])

    def forward(self, x):
        return self.model(x)


class Encoder(nn.Module):
    def __init__(self, c: VQVAEConfig):
        super().__init__()
        layers = [nn.Conv1d(c.feature_size, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down_t):
            layers.append(nn.Sequential(
                nn.Conv1d(c.width, c.width, 4, stride=2, padding=1),
                ResidualStack(c.width, c.depth, c.dilation_growth_rate),
            ))
        layers.append(nn.Conv1d(c.width, c.code_dim, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class Decoder(nn.Module):
    def __init__(self, c: VQVAEConfig):
        super().__init__()
        layers = [nn.Conv1d(c.code_dim, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down_t):
            layers.append(nn.Sequential(
                ResidualStack(c.width, c.depth, c.dilation_growth_rate),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(c.width, c.width, 3, padding=1),
            ))
        layers += [nn.Conv1d(c.width, c.width, 3, padding=1), nn.ReLU(), nn.Conv1d(c.width, c.feature_size, 3, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class Quantizer(nn.Module):
    """Nearest-code lookup in a codebook trained with EMA (the buffer the release stores)."""

    def __init__(self, c: VQVAEConfig):
        super().__init__()
        self.register_buffer("codebook", torch.zeros(c.codebook_size, c.code_dim))

    def quantize(self, vectors: torch.Tensor) -> torch.Tensor:
        """(N, code_dim) -> code indices (N,), by L2 distance."""
        distances = (
            vectors.pow(2).sum(-1, keepdim=True)
            - 2 * vectors @ self.codebook.t()
            + self.codebook.pow(2).sum(-1)[None]
        )
        return distances.argmin(-1)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.codebook)


class VQVAE(nn.Module):
    def __init__(self, config: VQVAEConfig | None = None):
        super().__init__()
        self.config = config or VQVAEConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.quantizer = Quantizer(self.config)

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Normalized features (B, T, 263), T a multiple of frames_per_token -> codes (B, T/4)."""
        if features.ndim != 3 or features.shape[-1] != self.config.feature_size:
            raise ValueError(f"features must have shape (batch, frames, {self.config.feature_size}), got {tuple(features.shape)}")
        step = self.config.frames_per_token
        if features.shape[1] < step or features.shape[1] % step:
            raise ValueError(f"the frame count must be a positive multiple of {step}, got {features.shape[1]}")
        hidden = self.encoder(features.transpose(1, 2))  # (B, code_dim, T/4)
        batch, dim, tokens = hidden.shape
        codes = self.quantizer.quantize(hidden.transpose(1, 2).reshape(-1, dim))
        return codes.view(batch, tokens)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, N) -> normalized features (B, N * frames_per_token, 263)."""
        if codes.ndim != 2 or codes.shape[1] < 1:
            raise ValueError(f"codes must have shape (batch, tokens >= 1), got {tuple(codes.shape)}")
        if codes.min() < 0 or codes.max() >= self.config.codebook_size:
            raise ValueError(f"codes must lie in 0..{self.config.codebook_size - 1}")
        vectors = self.quantizer.dequantize(codes).transpose(1, 2)
        return self.decoder(vectors).transpose(1, 2)
