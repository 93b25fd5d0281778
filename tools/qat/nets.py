"""The bundled networks, written as a list of named ops that both the PyTorch forward and the
ONNX exporter (export.py) walk, so the two cannot drift apart.

An op is (kind, name, inputs): its output value is called `name` (the last op's output is
renamed `logits` in the ONNX file). Kinds:
    actq     ActQuant module `name`; its value carries (y, X codes, s_x)
    conv/fc  QLayer module `name`; its input must be an actq value
    bn       BatchNorm2d module `name`
    relu, maxpool (2x2 stride 2), add, gap (global average pool), flatten
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from quant import ActQuant, PimConfig, QLayer

INPUT_SCALE = 1.0 / 255.0


class OpNet(nn.Module):
    def __init__(self, arch, a_bits=4, w_bits=4, edge_bits=8):
        super().__init__()
        self.arch = arch
        self.a_bits, self.w_bits, self.edge_bits = a_bits, w_bits, edge_bits
        self.ops = []
        self.mods = nn.ModuleDict()

    # builders --------------------------------------------------------------------------------
    def _op(self, kind, name, inputs, module=None):
        if module is not None:
            self.mods[name] = module
        self.ops.append((kind, name, list(inputs)))
        return name

    def actq(self, name, x, bits, fixed_scale=None):
        return self._op("actq", name, [x], ActQuant(bits, fixed_scale))

    def conv(self, name, x, cin, cout, k, stride=1, digital=False):
        bits = self.edge_bits if digital else self.w_bits
        layer = QLayer("conv", cin, cout, k, stride, k // 2, bias=False, w_bits=bits,
                       digital=digital)
        return self._op("conv", name, [x], layer)

    def fc(self, name, x, cin, cout, digital=False):
        bits = self.edge_bits if digital else self.w_bits
        return self._op("fc", name, [x], QLayer("linear", cin, cout, bias=True, w_bits=bits,
                                                digital=digital))

    def bn(self, name, x, c):
        return self._op("bn", name, [x], nn.BatchNorm2d(c))

    def simple(self, kind, name, *inputs):
        return self._op(kind, name, inputs)

    # PIM configuration -------------------------------------------------------------------------
    def qlayers(self):
        return [(name, self.mods[name]) for kind, name, _ in self.ops if kind in ("conv", "fc")]

    def set_pim(self, scheme=None, adc_bits=7, rows=64, rescale=True, delta_mode="learned",
                noise_lsb=0.0):
        """scheme None: conventional QAT (no PIM quantization in training). noise_lsb: thermal
        noise added to each ADC input in training (sigma in LSB)."""
        cfg = PimConfig(scheme, adc_bits, rows, noise_lsb) if scheme else None
        for _, layer in self.qlayers():
            layer.set_pim(cfg, rescale)
            layer.delta_mode = delta_mode
            layer.in_bits = self.a_bits

    def deploy_adc_bits(self, bits):
        for _, layer in self.qlayers():
            layer.deploy_adc_bits(bits)

    # forward -----------------------------------------------------------------------------------
    def forward(self, x, keep=False):
        vals = {"input": x}
        codes = {}
        for kind, name, ins in self.ops:
            a = vals[ins[0]]
            if kind == "actq":
                y, X, s = self.mods[name](a)
                codes[name] = (X, s)
            elif kind in ("conv", "fc"):
                if ins[0] not in codes:
                    raise ValueError(f"{name}: input {ins[0]} is not a quantized activation")
                X, s = codes[ins[0]]
                y = self.mods[name](X, s)
            elif kind == "bn":
                y = self.mods[name](a)
            elif kind == "relu":
                y = F.relu(a)
            elif kind == "maxpool":
                y = F.max_pool2d(a, 2, 2)
            elif kind == "add":
                y = a + vals[ins[1]]
            elif kind == "gap":
                y = a.mean((2, 3), keepdim=True)
            elif kind == "flatten":
                y = a.reshape(a.shape[0], -1)
            else:
                raise ValueError(f"unknown op kind {kind}")
            vals[name] = y
        out = vals[self.ops[-1][1]]
        return (out, vals) if keep else out


def fmnist_cnn(a_bits=4, w_bits=4):
    """VGG-style: conv1 (digital 8-bit) 1->16, conv2 16->16, pool, conv3 16->32, conv4 32->32,
    pool, conv5 32->64, global average pool, fc 64->10 (digital 8-bit)."""
    n = OpNet("fmnist-cnn", a_bits, w_bits)
    x = n.actq("act0", "input", 8, fixed_scale=INPUT_SCALE)
    x = n.conv("conv1", x, 1, 16, 3, digital=True)
    x = n.simple("relu", "relu1", n.bn("bn1", x, 16))
    x = n.actq("act1", x, a_bits)
    x = n.conv("conv2", x, 16, 16, 3)
    x = n.simple("relu", "relu2", n.bn("bn2", x, 16))
    x = n.simple("maxpool", "pool1", x)
    x = n.actq("act2", x, a_bits)
    x = n.conv("conv3", x, 16, 32, 3)
    x = n.simple("relu", "relu3", n.bn("bn3", x, 32))
    x = n.actq("act3", x, a_bits)
    x = n.conv("conv4", x, 32, 32, 3)
    x = n.simple("relu", "relu4", n.bn("bn4", x, 32))
    x = n.simple("maxpool", "pool2", x)
    x = n.actq("act4", x, a_bits)
    x = n.conv("conv5", x, 32, 64, 3)
    x = n.simple("relu", "relu5", n.bn("bn5", x, 64))
    x = n.simple("gap", "gap", x)
    x = n.simple("flatten", "flatten", x)
    x = n.actq("act5", x, 8)
    n.fc("fc", x, 64, 10, digital=True)
    return n


def fmnist_resnet(a_bits=4, w_bits=4):
    """Small ResNet: stem conv1 (digital 8-bit) 1->16; block1 16->16 (identity shortcut);
    block2 16->32 stride 2 and block3 32->64 stride 2 (1x1 stride-2 conv shortcuts); global
    average pool; fc 64->10 (digital 8-bit)."""
    n = OpNet("fmnist-resnet", a_bits, w_bits)
    x = n.actq("act0", "input", 8, fixed_scale=INPUT_SCALE)
    x = n.conv("conv1", x, 1, 16, 3, digital=True)
    x = n.simple("relu", "relu1", n.bn("bn1", x, 16))
    a1 = n.actq("act1", x, a_bits)
    # block1: identity shortcut
    x = n.conv("conv2", a1, 16, 16, 3)
    x = n.simple("relu", "relu2", n.bn("bn2", x, 16))
    x = n.actq("act2", x, a_bits)
    x = n.bn("bn3", n.conv("conv3", x, 16, 16, 3), 16)
    x = n.simple("relu", "relu3", n.simple("add", "add1", x, a1))
    a3 = n.actq("act3", x, a_bits)
    # block2: 16 -> 32, stride 2, 1x1 stride-2 conv shortcut
    x = n.conv("conv4", a3, 16, 32, 3, stride=2)
    x = n.simple("relu", "relu4", n.bn("bn4", x, 32))
    x = n.actq("act4", x, a_bits)
    x = n.bn("bn5", n.conv("conv5", x, 32, 32, 3), 32)
    sc = n.bn("bn6", n.conv("conv6", a3, 16, 32, 1, stride=2), 32)
    x = n.simple("relu", "relu5", n.simple("add", "add2", x, sc))
    a5 = n.actq("act5", x, a_bits)
    # block3: 32 -> 64, stride 2, 1x1 stride-2 conv shortcut
    x = n.conv("conv7", a5, 32, 64, 3, stride=2)
    x = n.simple("relu", "relu6", n.bn("bn7", x, 64))
    x = n.actq("act6", x, a_bits)
    x = n.bn("bn8", n.conv("conv8", x, 64, 64, 3), 64)
    sc = n.bn("bn9", n.conv("conv9", a5, 32, 64, 1, stride=2), 64)
    x = n.simple("relu", "relu7", n.simple("add", "add3", x, sc))
    x = n.simple("gap", "gap", x)
    x = n.simple("flatten", "flatten", x)
    x = n.actq("act7", x, 8)
    n.fc("fc", x, 64, 10, digital=True)
    return n


ARCHS = {"fmnist-cnn": fmnist_cnn, "fmnist-resnet": fmnist_resnet}


def build(arch, a_bits=4, w_bits=4):
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r} (expected one of {', '.join(ARCHS)})")
    return ARCHS[arch](a_bits, w_bits)
