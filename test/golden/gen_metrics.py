"""Golden values for engine/metrics/: scikit-learn (Debian's python3-sklearn) is the oracle.

Scores are rounded to float32 before sklearn sees them, so the engine (which reads them as
float32) ranks exactly the same values, ties included. Undefined values (sklearn raises or
warns: a class with no positives) are written as null; the engine returns NaN there.

Writes test/golden/fixtures/metrics.json + metrics.safetensors. Run: /usr/bin/python3 test/golden/generate.py metrics"""
import warnings

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, balanced_accuracy_score, confusion_matrix,
                             f1_score, jaccard_score, precision_score, recall_score, roc_auc_score, roc_curve)

from fixture_io import write_fixture

warnings.simplefilter("ignore")  # the undefined cases below warn on purpose
rs = np.random.RandomState(0)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def num(v):
    v = float(v)
    return None if np.isnan(v) else v


def nums(a):
    return [num(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def binary_case(name, y, s):
    y, s = np.asarray(y, dtype=np.int64), f32(s)
    case = {"name": name, "labels": y.tolist(), "scores": s.tolist()}
    defined = 0 < y.sum() < len(y)
    case["auc"] = float(roc_auc_score(y, s)) if defined else None
    case["ap"] = float(average_precision_score(y, s)) if y.sum() > 0 else None
    for drop in (True, False):
        fpr, tpr, thr = roc_curve(y, s, drop_intermediate=drop)
        # sklearn 1.2 puts max(score) + 1 first; the engine puts +Infinity (sklearn >= 1.3).
        case["roc_drop" if drop else "roc_full"] = {"fpr": nums(fpr), "tpr": nums(tpr), "thresholds": nums(thr[1:])}
    return case


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def multiclass_case(name, y, probs, class_names=None):
    y, p = np.asarray(y, dtype=np.int64), f32(probs)
    n, C = p.shape
    labels = list(range(C))
    auc, ap = [], []
    for c in range(C):
        yc = (y == c).astype(np.int64)
        auc.append(float(roc_auc_score(yc, p[:, c])) if 0 < yc.sum() < n else None)
        ap.append(float(average_precision_score(yc, p[:, c])) if yc.sum() > 0 else None)
    defined = [c for c in range(C) if auc[c] is not None]
    support = np.bincount(y, minlength=C)
    macro_auc = float(np.mean([auc[c] for c in defined]))
    weighted_auc = float(np.sum([support[c] * auc[c] for c in defined]) / np.sum(support[defined]))
    if len(defined) == C:  # sklearn's own multi-class averages agree where they are defined
        assert abs(macro_auc - roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels)) < 1e-12
        assert abs(weighted_auc - roc_auc_score(y, p, multi_class="ovr", average="weighted", labels=labels)) < 1e-12
    preds = p.argmax(axis=1)
    recall = recall_score(y, preds, labels=labels, average=None, zero_division=0)
    return {
        "name": name, "numClasses": C, "classNames": class_names or [f"c{c}" for c in range(C)],
        "labels": y.tolist(), "probs": p.reshape(-1).tolist(), "preds": preds.tolist(),
        "auc": auc, "macroAuc": macro_auc, "weightedAuc": weighted_auc,
        "ap": ap, "mAP": float(np.mean([ap[c] for c in range(C) if ap[c] is not None])),
        "accuracy": float(accuracy_score(y, preds)),
        "balancedAccuracy": float(balanced_accuracy_score(y, preds)),
        "f1": nums(f1_score(y, preds, labels=labels, average=None, zero_division=0)),
        "macroF1": float(f1_score(y, preds, labels=labels, average="macro", zero_division=0)),
        "precision": nums(precision_score(y, preds, labels=labels, average=None, zero_division=0)),
        "recall": [num(recall[c]) if support[c] > 0 else None for c in range(C)],
        "support": support.tolist(),
        "confusion": confusion_matrix(y, preds, labels=labels).tolist(),
    }


def segmentation_case(name, probs, targets, threshold):
    p, t = f32(probs), (np.asarray(targets) > 0.5).astype(np.int64)
    dice, iou = [], []
    for i in range(p.shape[0]):
        pred = (p[i].reshape(-1) > threshold).astype(np.int64)
        dice.append(float(f1_score(t[i].reshape(-1), pred, zero_division=1)))
        iou.append(float(jaccard_score(t[i].reshape(-1), pred, zero_division=1)))
    return {"name": name, "numImages": p.shape[0], "threshold": threshold, "probs": p.reshape(-1).tolist(),
            "targets": t.reshape(-1).tolist(), "dice": dice, "iou": iou, "meanDice": float(np.mean(dice)), "meanIou": float(np.mean(iou))}


def main():
    binary = []
    y = (rs.rand(60) < 0.4).astype(int)
    binary.append(binary_case("random", y, y * 0.7 + rs.rand(60)))
    y = (rs.rand(50) < 0.5).astype(int)
    binary.append(binary_case("ties_one_decimal", y, np.round(y * 0.3 + rs.rand(50) * 0.8, 1)))
    binary.append(binary_case("all_tied", [0, 1, 1, 0, 1, 0, 0], [0.5] * 7))
    binary.append(binary_case("sklearn_doc", [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]))
    binary.append(binary_case("perfect", [0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.9]))
    binary.append(binary_case("inverted_with_ties", [1, 1, 0, 0, 1, 0], [0.1, 0.2, 0.2, 0.9, 0.2, 0.7]))
    binary.append(binary_case("no_positives", [0, 0, 0, 0], [0.3, 0.1, 0.7, 0.2]))

    multiclass = []
    C, n = 5, 200
    y = rs.choice(C, size=n, p=[0.4, 0.25, 0.15, 0.12, 0.08])
    logits = rs.randn(n, C) + 1.5 * np.eye(C)[y]
    multiclass.append(multiclass_case("c5_random", y, softmax(logits)))
    y = rs.choice(C, size=120, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    logits = rs.randint(0, 3, size=(120, C)).astype(float) + np.eye(C)[y] * (rs.rand(120, 1) < 0.5)
    multiclass.append(multiclass_case("c5_integer_logits_ties", y, softmax(logits)))
    y = rs.choice([0, 1, 3], size=80, p=[0.5, 0.3, 0.2])  # class 2 never occurs
    logits = rs.randn(80, 4) + 1.2 * np.eye(4)[y]
    multiclass.append(multiclass_case("c4_class2_absent", y, softmax(logits)))
    names = ["Angioectasia", "Bleeding", "Erosion", "Erythema", "Foreign Body", "Lymphangiectasia", "Normal", "Polyp", "Ulcer", "Worms"]
    prior = np.array([2374, 27450, 5283, 1162, 675, 1173, 67434, 12119, 12334, 201], dtype=float)
    prior = np.maximum(prior / prior.sum(), 0.01)
    y = rs.choice(10, size=400, p=prior / prior.sum())
    logits = rs.randn(400, 10) * 1.2 + 2.0 * np.eye(10)[y]
    multiclass.append(multiclass_case("ce24_like", y, softmax(logits), names))

    segmentation = []
    H, W = 9, 11
    yy, xx = np.mgrid[0:H, 0:W]
    probs, targets = [], []
    for i in range(6):
        cy, cx, r = rs.uniform(2, 7), rs.uniform(2, 9), rs.uniform(1.5, 4)
        t = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(float)
        p = np.clip(t * 0.35 + rs.rand(H, W) * 0.6, 0, 1)
        probs.append(p)
        targets.append(t)
    probs[3][:] = 0.2; targets[3][:] = 0          # both empty: 1
    probs[4][:] = 0.1                             # prediction empty, target not: 0
    targets[5][:] = 0                             # target empty, prediction not: 0
    probs[0][0, 0] = 0.5                          # exactly at the threshold: not foreground (> 0.5)
    segmentation.append(segmentation_case("blobs_t05", np.stack(probs), np.stack(targets), 0.5))
    segmentation.append(segmentation_case("blobs_t03", np.stack(probs), np.stack(targets), 0.3))

    bag_y = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1]
    bag_s = f32([0.2, 0.9, 0.6, 0.6, 0.3, 0.1, 0.6, 0.95, 0.6, 0.45, 0.8])
    bag = {"labels": bag_y, "scores": bag_s.tolist(), "auc": float(roc_auc_score(bag_y, bag_s))}

    out = {"family": "metrics", "generator": "test/golden/gen_metrics.py", "binary": binary,
           "multiclass": multiclass, "segmentation": segmentation, "bag": bag}
    write_fixture("metrics", out)
    print(f"metrics: {len(binary)} binary, {len(multiclass)} multi-class, {len(segmentation)} segmentation cases")


if __name__ == "__main__":
    main()
