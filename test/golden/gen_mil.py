"""Golden state for the EndoKED-MIL parity test (test/models/mil.test.ts): a float64 PyTorch
re-implementation of models/mil.ts, with module names equal to the reference's state_dict keys
(zwyang6/ENDOKED EndoKED_MIL/models/resnetv1.py: Bag_Classifier_Attention_Head,
Bag_Classifier_DSMIL_Head, Instance_Classifier_Head; the losses of map_abmil / map_dsmil and the
student loss of train_Endo_BagDistillation_SharedEnc_Similarity_StuFilter.py; gated attention as
AMLab-Amsterdam/AttentionDeepMIL model.py).

Config: a tiny encoder (16x16 frames, channels [4, 8], two convs per stage) and heads of width 8
(attention width 4). Dropout 0 so the forward is deterministic; train mode (BatchNorm on batch
statistics). Weights U(+-1/sqrt(fan_in)) (norms near 1) on a 2^-12 grid so both sides hold the same
values exactly. Three bags of 3, 5 and 8 frames (labels 1, 0, 1); for each, every head's outputs,
its loss, and the gradient of that loss with respect to every encoder and head parameter
(separately per head). DSMIL's loss is recorded with the reference's double softmax (the one the
gradients belong to) and with CE on the logits.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import write_fixture

torch.set_default_dtype(torch.float64)
SCALE = 2.0 ** -12
CONFIG = {"inChans": 3, "imageSize": 16, "channels": [4, 8], "blocksPerStage": 2, "encoderNorm": "batch", "abmilHidden": 8, "abmilAttn": 4,
          "gated": False, "dsmilHidden": 8, "studentHidden": 8, "dropout": 0.0, "headInit": "pytorch"}


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        layers, cin = [], c["inChans"]
        for ch in c["channels"]:
            for b in range(c["blocksPerStage"]):
                layers += [nn.Conv2d(cin, ch, 3, stride=2 if b == 0 else 1, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU()]
                cin = ch
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x).mean(dim=(2, 3))


class Abmil(nn.Module):
    def __init__(self, f, L, D, gated, p):
        super().__init__()
        self.gated = gated
        self.classifier = nn.Sequential(nn.Dropout(p), nn.Linear(f, L), nn.BatchNorm1d(L), nn.ReLU(), nn.Dropout(p), nn.Linear(L, L), nn.BatchNorm1d(L), nn.ReLU())
        if gated:
            self.attention_V = nn.Sequential(nn.Linear(L, D), nn.Tanh())
            self.attention_U = nn.Sequential(nn.Linear(L, D), nn.Sigmoid())
            self.attention_weights = nn.Linear(D, 1)
        else:
            self.attention = nn.Sequential(nn.Linear(L, D), nn.Tanh(), nn.Linear(D, 1))
        self.top_layer = nn.Linear(L, 2)

    def forward(self, feat):
        x = self.classifier(feat)
        a_ = self.attention_weights(self.attention_V(x) * self.attention_U(x)) if self.gated else self.attention(x)
        a = F.softmax(a_.t(), dim=1)
        return {"logits": self.top_layer(a @ x), "scores": a_.squeeze(1), "attention": a}


class Dsmil(nn.Module):
    def __init__(self, f, L, p):
        super().__init__()
        self.classifier = nn.Sequential(nn.Dropout(p), nn.Linear(f, L), nn.ReLU(), nn.Dropout(p), nn.Linear(L, L), nn.ReLU())
        self.fc_dsmil = nn.Sequential(nn.Linear(L, 2))
        self.q_dsmil = nn.Linear(L, L)
        self.v_dsmil = nn.Sequential(nn.Dropout(0.0), nn.Linear(L, L))
        self.fcc_dsmil = nn.Conv1d(2, 2, kernel_size=L)
        self.top_layer = nn.Linear(L, 2)

    def forward(self, feat):
        x = self.classifier(feat)
        c = self.fc_dsmil(x)
        v = self.v_dsmil(x)
        q = self.q_dsmil(x)
        _, m = torch.sort(c, 0, descending=True)
        q_max = self.q_dsmil(torch.index_select(x, 0, m[0, :]))
        a = F.softmax(q @ q_max.t() / math.sqrt(q.shape[1]), 0)
        b = (a.t() @ v).view(1, 2, -1)
        return {"logits": self.fcc_dsmil(b).view(1, -1), "instanceLogits": c, "scores": F.softmax(c, 1)[:, 1], "attention": a}


class Student(nn.Module):
    def __init__(self, f, h, p):
        super().__init__()
        self.classifier = nn.Sequential(nn.Dropout(p), nn.Linear(f, h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, h), nn.ReLU())
        self.top_layer = nn.Linear(h, 2)

    def forward(self, feat):
        return self.top_layer(self.classifier(feat))


def bce_eps(p, y):
    return -(y * torch.log(p + 1e-5) + (1 - y) * torch.log(1 - p + 1e-5))


def abmil_loss(out, y):
    return bce_eps(torch.softmax(out["logits"], 1)[0, 1], y)


def dsmil_loss(out, y, double_softmax=True):
    bag = torch.softmax(out["logits"], 1) if double_softmax else out["logits"]
    ce = F.cross_entropy(bag, torch.tensor([y]))
    return 0.5 * ce + 0.5 * bce_eps(out["scores"].max(), y)


def student_loss(logits, pl, lam):
    s = torch.softmax(logits, 1)
    return -torch.mean(lam * (1 - pl) * torch.log(s[:, 0] + 1e-5) + (1 - lam) * pl * torch.log(s[:, 1] + 1e-5))


def seeded_weights(model, g):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and isinstance(dict(model.named_modules()).get(name.rsplit(".", 1)[0]), (nn.BatchNorm1d, nn.BatchNorm2d)):
                v = (1 + 0.4 * (torch.rand(p.shape, generator=g) - 0.5)) if name.endswith("weight") else 0.2 * (torch.rand(p.shape, generator=g) - 0.5)
            else:
                fan_in = p[0].numel() if p.ndim > 1 else 8
                v = (torch.rand(p.shape, generator=g) * 2 - 1) / math.sqrt(fan_in)
            p.copy_(torch.round(v / SCALE) * SCALE)


def quantised(t, scale):
    return {"shape": list(t.shape), "dtype": "f32" if t.is_floating_point() else "i32", "scale": scale,
            "q": [int(v) for v in torch.round(t.detach().reshape(-1) / scale).tolist()]}


def encoded(t):
    return {"shape": list(t.shape), "dtype": "f32", "data": [float("%.7g" % v) for v in t.detach().reshape(-1).tolist()]}


def main():
    g = torch.Generator().manual_seed(20240612)
    c, p = CONFIG, CONFIG["dropout"]
    f = c["channels"][-1]
    modules = {
        "encoder": Encoder(c),
        "abmil": Abmil(f, c["abmilHidden"], c["abmilAttn"], False, p),
        "gated": Abmil(f, c["abmilHidden"], c["abmilAttn"], True, p),
        "dsmil": Dsmil(f, c["dsmilHidden"], p),
        "student": Student(f, c["studentHidden"], p),
    }
    for m in modules.values():
        seeded_weights(m, g)
        m.train()
    state = {name: {k: quantised(v, SCALE if v.is_floating_point() else 1) for k, v in m.state_dict().items()} for name, m in modules.items()}
    enc = modules["encoder"]
    bags = []
    for n, y in [(3, 1), (5, 0), (8, 1)]:
        pixels = torch.randint(0, 256, (n, 3, 16, 16), generator=g)
        x = pixels.to(torch.float64) / 255
        pl = torch.round(torch.rand(n, generator=g) * 4096) / 4096 * y
        bag = {"n": n, "label": y, "input": {"shape": list(x.shape), "dtype": "f32", "scale": 1 / 255, "q": pixels.reshape(-1).tolist()},
               "pseudo": quantised(pl, SCALE), "heads": {}}
        for head in ["abmil", "gated", "dsmil", "student"]:
            m = modules[head]
            for q in list(enc.parameters()) + list(m.parameters()):
                q.grad = None
            feat = enc(x)
            if head == "student":
                logits = m(feat)
                loss = student_loss(logits, pl, 0.1)
                outs = {"logits": logits}
            else:
                outs = m(feat)
                loss = abmil_loss(outs, y) if head != "dsmil" else dsmil_loss(outs, y)
                if head == "dsmil":
                    bag["dsmil_loss_logits_ce"] = float(dsmil_loss(outs, y, double_softmax=False))
            loss.backward()
            rec = {k: encoded(v) for k, v in outs.items()}
            rec["loss"] = float(loss)
            rec["grads"] = {f"encoder.{k}": encoded(q.grad) for k, q in enc.named_parameters()}
            rec["grads"].update({k: encoded(q.grad) for k, q in m.named_parameters() if q.grad is not None})
            if head == "dsmil":
                rec["critical"] = torch.argmax(outs["instanceLogits"], 0).tolist()
            rec["feat"] = encoded(feat)
            bag["heads"][head] = rec
        bags.append(bag)
    # Merged pseudo-labels from two teachers' raw scores (norm_AttnScore2Prob + clamp + merge + negative bags to 0).
    s1 = torch.round((torch.rand(6, generator=g) * 4 - 2) * 4096) / 4096
    s2 = torch.round(torch.rand(6, generator=g) * 4096) / 4096
    ranges = [[-1.5, 1.25], [0.125, 0.75]]
    weights = [0.5, 0.5]
    pos = torch.tensor([1.0, 1, 1, 0, 0, 1])
    merged = sum(w * ((s - lo) / (hi - lo)).clamp(1e-5, 1 - 1e-5) for s, (lo, hi), w in zip([s1, s2], ranges, weights)) * pos
    fixture = {
        "family": "mil", "generator": "test/golden/gen_mil.py", "config": CONFIG, "lambda": 0.1, "state_dict": state, "bags": bags,
        "pseudo_labels": {"scores": [encoded(s1), encoded(s2)], "ranges": ranges, "weights": weights, "bag_positive": encoded(pos), "expected": encoded(merged)},
        "num_parameters": {k: sum(q.numel() for q in m.parameters()) for k, m in modules.items()},
    }
    write_fixture("mil", fixture)


if __name__ == "__main__":
    main()
