"""A small CLIP vision tower with Hugging Face CLIPVisionModel parameter names.

The module tree mirrors transformers' CLIPVisionModel so that ``state_dict()``
yields exactly the ``vision_model.*`` names the playground loads.  The
optional ``visual_projection`` lives beside ``vision_model`` as in CLIPModel.
"""
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class VisionConfig:
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    image_size: int = 28
    patch_size: int = 7
    num_channels: int = 1
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    projection_dim: int = 64

    def to_hf(self) -> dict:
        """Hugging Face CLIPVisionConfig-style dict (config.json)."""
        d = asdict(self)
        d.update({"architectures": ["CLIPVisionModel"], "model_type": "clip_vision_model",
                  "attention_dropout": 0.0, "initializer_range": 0.02, "initializer_factor": 1.0,
                  "torch_dtype": "float32"})
        return d


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


class Embeddings(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        n = (c.image_size // c.patch_size) ** 2
        self.class_embedding = nn.Parameter(torch.zeros(c.hidden_size))
        self.patch_embedding = nn.Conv2d(c.num_channels, c.hidden_size, c.patch_size, c.patch_size, bias=False)
        self.position_embedding = nn.Embedding(n + 1, c.hidden_size)

    def forward(self, x):
        p = self.patch_embedding(x).flatten(2).transpose(1, 2)  # [B, N, D]
        cls = self.class_embedding.expand(p.shape[0], 1, -1)
        return torch.cat([cls, p], dim=1) + self.position_embedding.weight.unsqueeze(0)


class Attention(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        d = c.hidden_size
        self.h = c.num_attention_heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.h
        # HF scales q after the projection by head_dim ** -0.5.
        q = (self.q_proj(x) * hd ** -0.5).view(b, t, self.h, hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.h, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.h, hd).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return self.out_proj((a @ v).transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.fc2 = nn.Linear(c.intermediate_size, c.hidden_size)
        self.act = quick_gelu if c.hidden_act == "quick_gelu" else F.gelu

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Layer(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.self_attn = Attention(c)
        self.layer_norm1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = MLP(c)
        self.layer_norm2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])


class VisionTransformer(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.encoder = Encoder(c)
        self.post_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        h = self.pre_layrnorm(self.embeddings(x))
        for layer in self.encoder.layers:
            h = layer(h)
        return self.post_layernorm(h[:, 0])  # pooler_output


class ClipVision(nn.Module):
    """vision_model.* (the merged encoder) plus the frozen visual_projection."""

    def __init__(self, c: VisionConfig):
        super().__init__()
        self.config = c
        self.vision_model = VisionTransformer(c)
        self.visual_projection = nn.Linear(c.hidden_size, c.projection_dim, bias=False)

    def forward(self, x):
        """Unit-norm image embeddings, shape [B, projection_dim]."""
        return F.normalize(self.visual_projection(self.vision_model(x)), dim=-1)

    def encoder_state(self) -> dict:
        """The encoder tensors (what is fine-tuned and merged), detached copies."""
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k.startswith("vision_model.")}


def init_weights(model: ClipVision, seed: int) -> None:
    """CLIP-style initialisation, deterministic for a seed."""
    c = model.config
    g = torch.Generator().manual_seed(seed)
    d, L = c.hidden_size, c.num_hidden_layers
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("class_embedding"):
                p.copy_(torch.randn(p.shape, generator=g) * d ** -0.5)
            elif "position_embedding" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            elif "patch_embedding" in name:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=g) * fan_in ** -0.5)
            elif "layer_norm" in name or "layrnorm" in name or "layernorm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            elif "out_proj" in name or "fc2" in name:
                p.copy_(torch.randn(p.shape, generator=g) * (p.shape[1] ** -0.5) * (2 * L) ** -0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * p.shape[1] ** -0.5)
