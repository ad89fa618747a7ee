"""Models for 32x32 classification: build_model(cfg.model) -> nn.Module.

The ResNets use the CIFAR stem (3x3 first conv, stride 1, no max-pool), as in the CIFAR results the
reference cites (ResNet-18: 11.2M parameters).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from .config import ModelConf


def make_norm(kind: str, channels: int) -> nn.Module:
    """model.norm: BatchNorm, or GroupNorm with up to 32 groups (the GroupNorm paper's default)."""
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    return nn.BatchNorm2d(channels)


def conv_bn_relu(c_in: int, c_out: int, norm: str = "batch") -> nn.Sequential:
    return nn.Sequential(OrderedDict(conv=nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                                     bn=make_norm(norm, c_out), relu=nn.ReLU(inplace=True)))


class SmallCNN(nn.Sequential):
    """Three conv-BN-ReLU stages (w, 2w, 4w channels), max-pool between them, global average pool."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, norm: str = "batch"):
        w = width
        super().__init__(OrderedDict(
            stage1=conv_bn_relu(in_channels, w, norm), pool1=nn.MaxPool2d(2),
            stage2=conv_bn_relu(w, 2 * w, norm), pool2=nn.MaxPool2d(2),
            stage3=conv_bn_relu(2 * w, 4 * w, norm),
            pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
            fc=nn.Linear(4 * w, num_classes),
        ))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, norm: str = "batch"):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, c_out)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = make_norm(norm, c_out)
        self.relu2 = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), make_norm(norm, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks: list[int], in_channels: int, num_classes: int, width: int = 64, norm: str = "batch"):
        super().__init__()
        self.stem = conv_bn_relu(in_channels, width, norm)
        stages, c = [], width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            for j in range(n):
                stages.append(BasicBlock(c, c_out, stride=2 if (i > 0 and j == 0) else 1, norm=norm))
                c = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


RESNET_BLOCKS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


def build_model(cfg: ModelConf) -> nn.Module:
    if cfg.name == "small_cnn":
        return SmallCNN(cfg.in_channels, cfg.num_classes, cfg.width, cfg.norm)
    if cfg.name in RESNET_BLOCKS:
        return ResNet(RESNET_BLOCKS[cfg.name], cfg.in_channels, cfg.num_classes, cfg.width, cfg.norm)
    raise ValueError(f"model={cfg.name} is unknown")

