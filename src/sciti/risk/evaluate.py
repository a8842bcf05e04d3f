"""How well a model ranks: precision, recall and revenue among the top k % scored, with CIs.

``evaluate_kcs`` trains on one KCS file and reports on another (the dataset has no test file on
purpose: train on train.csv, evaluate on valid.csv). ``evaluate_lake`` does the same on the lake
with a time split, and reports the random-inspection subset separately (the unbiased sample).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from sciti.risk.features import build_reference_from, compute_batch
from sciti.risk.features.national import DEFAULT, National
from sciti.risk.models.fit import fit

KS = (1, 2, 5, 10)
# Published anchors on KCS train -> valid (see issue 4): the dataset paper's best model and a tuned GBM.
ANCHORS = {
    "fraud": {"paper_precision@5%": 0.76, "paper_precision@10%": 0.64, "gbm_precision@5%": 0.96},
    "critical": {"gbm_precision@1%": 0.55},
}
# KCS CSV column -> canonical field (the same mapping as connectors/kcs).
KCS_COLUMNS = {
    "Declaration ID": "declaration_id",
    "Date": "acceptance_date",
    "Office ID": "office_code",
    "Process Type": "process_type",
    "Import Type": "import_type",
    "Import Use": "import_use",
    "Payment Type": "payment_type",
    "Mode of Transport": "mode_of_transport",
    "Declarant ID": "declarant_id",
    "Importer ID": "importer_id",
    "Seller ID": "exporter_id",
    "Courier ID": "courier_id",
    "HS6 Code": "hs_code",
    "Country of Departure": "country_of_dispatch",
    "Country of Origin": "country_of_origin",
    "Tax Rate": "duty_rate",
    "Tax Type": "tax_type",
    "Country of Origin Indicator": "origin_indicator",
    "Net Mass": "net_mass_kg",
    "Item Price": "item_price",
    "Fraud": "fraud_label",
    "Critical Fraud": "critical_label",
}
# The KCS files are Korean customs data: their values are in won, whatever this instance's national
# currency. Only the words use it; the threshold (no declaration feature uses it) stays the default.
KCS_NATIONAL = National("KRW", DEFAULT.cash_threshold)
_NUMERIC = {"Tax Rate", "Net Mass", "Item Price", "Fraud", "Critical Fraud"}
FOLDS = 5
# Counts from a fold's reference see (FOLDS-1)/FOLDS of the rows; scaled so train and test agree.
_COUNT_FEATURES = (
    "trader_declarations_365d",
    "trader_inspections",
    "declarant_declarations_365d",
    "exporter_declarations",
    "courier_declarations",
    "declarant_importer_declarations",
    "importer_exporter_declarations",
    "hs_declarations",
    "hs_origin_declarations",
    "importer_hs_declarations",
)


# --- metrics -----------------------------------------------------------------------------------


def _top(n_rows: int, k: float) -> int:
    return max(1, int(round(n_rows * k / 100.0)))


def point_metrics(y: np.ndarray, s: np.ndarray, revenue: np.ndarray | None = None) -> dict[str, float]:
    order = np.argsort(-s, kind="stable")
    ys = y[order]
    total = ys.sum()
    out: dict[str, float] = {}
    for k in KS:
        n = _top(len(y), k)
        out[f"precision@{k}%"] = float(ys[:n].mean())
        out[f"recall@{k}%"] = float(ys[:n].sum() / total) if total else float("nan")
        if revenue is not None:
            rev = revenue[order]
            rtot = np.nansum(rev)
            out[f"revenue@{k}%"] = float(np.nansum(rev[:n]) / rtot) if rtot else float("nan")
    both = 0 < total < len(y)
    out["average_precision"] = float(average_precision_score(y, s)) if both else float("nan")
    out["roc_auc"] = float(roc_auc_score(y, s)) if both else float("nan")
    return out


def metrics(
    y: np.ndarray, s: np.ndarray, revenue: np.ndarray | None = None, *, bootstrap: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Point figures and 95 % bootstrap intervals (resampling the evaluated rows)."""
    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    point = point_metrics(y, s, revenue)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(bootstrap):
        idx = rng.integers(0, len(y), len(y))
        for k, v in point_metrics(y[idx], s[idx], None if revenue is None else revenue[idx]).items():
            samples[k].append(v)
    ci = {k: _interval(v) for k, v in samples.items()}
    return {"n": int(len(y)), "positives": int(y.sum()), "metrics": point, "ci95": ci}


def _interval(values: list[float]) -> list[float]:
    """2.5th and 97.5th percentiles of the finite resampled values (NaN when there are none)."""
    finite = np.asarray([v for v in values if np.isfinite(v)])
    if finite.size == 0:
        return [float("nan"), float("nan")]
    return [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))]


MIN_REVENUE_RECORDS = 10  # inspections with revenue raised in the test period, for revenue@k%


def usable_revenue(revenue: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The revenue to report revenue@k% on, or None and why. A share of the revenue of one or two
    inspections says nothing (one gives 1.000 at every k, with an interval of 1.000-1.000)."""
    known = int((revenue > 0).sum())
    if known >= MIN_REVENUE_RECORDS:
        return revenue, None
    return None, (
        f"revenue@k% left out: {known} inspected record(s) of the test period have revenue raised; "
        f"at least {MIN_REVENUE_RECORDS} are needed"
    )


CURVE_POINTS = 101  # per curve: small enough to keep in the registry entry and draw as is


def _thin(xs: np.ndarray, ys: np.ndarray, points: int) -> list[list[float]]:
    """At most ``points`` (x, y) pairs of a curve, evenly spaced along it, ends kept, 4 decimals."""
    n = len(xs)
    idx = np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(int)) if n else np.array([], int)
    return [[round(float(xs[i]), 4), round(float(ys[i]), 4)] for i in idx]


def curves(y: np.ndarray, s: np.ndarray, *, points: int = CURVE_POINTS) -> dict[str, Any]:
    """Curves of how the scores rank, for charts: each a list of at most ``points`` [x, y] pairs.

    ``precision_at_k``: [k, precision among the top k % scored] for k = 1..100 (the targeting
    view: inspect the top k %); ``roc``: [false positive rate, true positive rate];
    ``precision_recall``: [recall, precision]. ROC and precision-recall are None when the rows hold
    a single class (they are undefined then); ``base_rate`` is the share of positives, the
    precision of inspecting at random.
    """
    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if len(y) == 0:
        return {"n": 0, "base_rate": None, "precision_at_k": [], "roc": None, "precision_recall": None}
    ys = y[np.argsort(-s, kind="stable")]
    hits = np.cumsum(ys)
    ks = np.arange(1, 101)
    tops = np.asarray([_top(len(y), int(k)) for k in ks])
    at_k = _thin(ks.astype(float), hits[tops - 1] / tops, points)
    out: dict[str, Any] = {"n": int(len(y)), "base_rate": round(float(y.mean()), 4), "precision_at_k": at_k}
    if 0 < y.sum() < len(y):
        fpr, tpr, _ = roc_curve(y, s)
        precision, recall, _ = precision_recall_curve(y, s)
        out["roc"] = _thin(fpr, tpr, points)
        out["precision_recall"] = _thin(recall[::-1], precision[::-1], points)  # recall rising
    else:
        out["roc"] = out["precision_recall"] = None
    return out


# --- KCS ---------------------------------------------------------------------------------------


def read_kcs(path: Path | str) -> pa.Table:
    """A KCS CSV as canonical declaration rows with labels (inspected, fraud, fraud_severity)."""
    types = {c: (pa.float64() if c in _NUMERIC else pa.string()) for c in KCS_COLUMNS if c != "Date"}
    t = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=types))
    t = t.rename_columns([KCS_COLUMNS.get(c, c) for c in t.column_names])
    n = t.num_rows
    return (
        t.append_column("record_id", t["declaration_id"])
        .append_column("item_number", pa.array([1] * n, pa.int64()))
        .append_column("record_date", pc.cast(t["acceptance_date"], pa.date32()))
        .append_column("inspected", pa.array([True] * n))
        .append_column("fraud", pc.equal(t["fraud_label"], 1.0))
        .append_column("fraud_severity", pc.cast(t["critical_label"], pa.int64()))
        .append_column("inspected_on", pc.cast(t["acceptance_date"], pa.date32()))
    )


def kcs_features(
    train: pa.Table, test: pa.Table, known: dict[str, frozenset[str]]
) -> tuple[pa.Table, pa.Table]:
    """Features for both files: out-of-fold for train rows (a row never sees its own label)."""
    as_of = max(train["record_date"].to_pylist())
    fold = np.random.default_rng(0).integers(0, FOLDS, train.num_rows)
    parts, order = [], []
    for f in range(FOLDS):
        inside = pa.array(fold == f)
        ref = build_reference_from(
            train.filter(pc.invert(inside)),
            as_of=as_of,
            snapshot_id=f"kcs-fold{f}",
            known=known,
            keep_events=False,
            national=KCS_NATIONAL,
        )
        part = compute_batch("declaration", train.filter(inside), ref)
        for name in _COUNT_FEATURES:
            i = part.schema.get_field_index(name)
            part = part.set_column(i, name, pc.multiply(part[name], FOLDS / (FOLDS - 1)))
        parts.append(part)
        order.append(np.nonzero(fold == f)[0])
    oof = pa.concat_tables(parts).take(pa.array(np.argsort(np.concatenate(order), kind="stable")))
    ref = build_reference_from(
        train, as_of=as_of, snapshot_id="kcs-train", known=known, keep_events=False, national=KCS_NATIONAL
    )
    return oof, compute_batch("declaration", test, ref)


@dataclass
class TaskResult:
    task: str
    report: dict[str, Any]
    scores: np.ndarray
    model: Any


def _labels(table: pa.Table, task: str) -> np.ndarray:
    if task == "fraud":
        return np.asarray(table["fraud_label"].to_numpy(zero_copy_only=False) == 1, dtype=np.float64)
    return np.asarray(table["critical_label"].to_numpy(zero_copy_only=False) == 2, dtype=np.float64)


def evaluate_kcs(
    train_path: Path | str,
    test_path: Path | str,
    *,
    known: dict[str, frozenset[str]] | None = None,
    bootstrap: int = 200,
    explain_top: int = 10,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> dict[str, Any]:
    """Train on ``train_path`` and report on ``test_path`` for the fraud and critical tasks."""
    started = time.monotonic()
    train, test = read_kcs(train_path), read_kcs(test_path)
    if limit_train:
        train = train.slice(0, limit_train)
    if limit_test:
        test = test.slice(0, limit_test)
    tr_feats, te_feats = kcs_features(train, test, known or {})
    report: dict[str, Any] = {
        "train": {"file": Path(train_path).name, "rows": train.num_rows},
        "test": {"file": Path(test_path).name, "rows": test.num_rows},
        "tasks": {},
    }
    for task in ("fraud", "critical"):
        y_tr, y_te = _labels(train, task), _labels(test, task)
        model = fit("declaration", tr_feats, y_tr, label=task, version=f"kcs-{task}")
        scores = model.score(te_feats)
        result = metrics(y_te, scores, bootstrap=bootstrap)
        result["anchors"] = ANCHORS[task]
        top = np.argsort(-scores, kind="stable")[:explain_top]
        factors = model.explain(te_feats.take(pa.array(top)), top=3, national=KCS_NATIONAL)
        result["top_explained"] = [
            {
                "declaration_id": te_feats["declaration_id"][int(i)].as_py(),
                "score": float(scores[i]),
                "label": int(y_te[i]),
                "factors": [f.text for f in fs],
            }
            for i, fs in zip(top, factors, strict=True)
        ]
        # Every flagged score (top 10 %, what officers would inspect) is explained: count any without
        # factors (TreeSHAP per row costs more than scoring, so the unflagged rows are not explained).
        flagged = np.argsort(-scores, kind="stable")[: _top(len(scores), 10)]
        contrib = model.contributions(te_feats.take(pa.array(flagged)))[:, :-1]
        result["explained_rows"] = int(len(flagged))
        result["unexplained_scores"] = int(np.sum(~np.any(contrib != 0, axis=1)))
        report["tasks"][task] = result
    report["seconds"] = round(time.monotonic() - started, 1)
    report["as_of"] = date.today().isoformat()
    return report


# --- lake --------------------------------------------------------------------------------------


def evaluate_lake(
    settings: Any,
    kind: str = "declaration",
    *,
    label: str = "fraud",
    since: date | None = None,
    until: date | None = None,
    bootstrap: int = 200,
) -> dict[str, Any]:
    """Train on the earlier inspected records, report on the latest period (nothing registered).

    Adds revenue@k% (share of the revenue raised by inspections that the top k % would have found)
    and the random-inspection subset, the unbiased estimate.
    """
    from sciti.risk.models.train import labelled_features, labels_of, time_split

    feats, _ = labelled_features(settings, kind, since, until)
    train_part, test_part, cut = time_split(feats)
    model = fit(kind, train_part, labels_of(train_part, label), label=label)
    y = labels_of(test_part, label)
    s = model.score(test_part)
    rev = np.asarray(pc.fill_null(test_part["revenue_raised"], 0.0).to_numpy(zero_copy_only=False), float)
    used, note = usable_revenue(rev)
    report: dict[str, Any] = {
        "kind": kind,
        "label": label,
        "split_date": cut.isoformat(),
        "train_rows": train_part.num_rows,
        "revenue_records": int((rev > 0).sum()),
        "validation": metrics(y, s, used, bootstrap=bootstrap),
    }
    if note:
        report["revenue_note"] = note
    random = np.asarray(
        pc.fill_null(pc.equal(test_part["selection_reason"], "random"), False).to_numpy(zero_copy_only=False),
        bool,
    )
    if random.any():
        report["validation_random"] = metrics(
            y[random], s[random], None if used is None else rev[random], bootstrap=bootstrap
        )
    return report
