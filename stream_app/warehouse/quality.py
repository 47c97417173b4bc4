"""Live model quality: views over predictions joined with their labels (docs/model-quality.md).

``prediction_labels`` gives each prediction, the champion's and the online learner's shadow
ones (``online_predictions``, under its own model version), its labels (the chargeback's when
there is one, else the alert feedback's); ``quality_hourly`` and ``quality_daily`` give per
model version and event-time window the counts, precision, recall and F1 at the model's
threshold (its ``decision``), ROC and PR AUC over the labelled predictions, the positive and
fraud rates, score quantiles and label maturity; ``quality_at_k`` the daily alert precision
P@k and card precision CP@k. A figure a window cannot define (no fraud labelled: recall, the
AUCs) is NaN. The AUCs are computed over arrays aggregated in a subquery, then the view's outer
query (ClickHouse #77605: ``arrayROCAUC`` over ``groupArray`` in some query shapes went wrong).
"""

from __future__ import annotations

PREDICTION_LABELS = """CREATE OR REPLACE VIEW {db}.prediction_labels AS
SELECT p.model_version AS model_version, p.event_id AS event_id, p.card_id AS card_id,
  p.event_time AS event_time, p.score AS score, p.decision = 'decline' AS flagged,
  c.known AS chargeback_known, f.known AS feedback_known, c.known OR f.known AS labelled,
  if(c.known, c.is_fraud, f.is_fraud) AS is_fraud
FROM (
  SELECT model_version, event_id, card_id, event_time, score, decision FROM {db}.predictions
  UNION ALL
  SELECT model_version, event_id, card_id, event_time, score, decision
  FROM {db}.online_predictions
) AS p
LEFT JOIN (SELECT event_id, is_fraud, true AS known FROM {db}.labels
  WHERE label_source = 'chargeback') AS c ON c.event_id = p.event_id
LEFT JOIN (SELECT event_id, is_fraud, true AS known FROM {db}.labels
  WHERE label_source = 'alert_feedback') AS f ON f.event_id = p.event_id
SETTINGS join_use_nulls = 0"""

QUALITY = """CREATE OR REPLACE VIEW {db}.quality_{name} AS
SELECT model_version, window_start, predictions, n_labelled AS labelled,
  n_labelled / predictions AS label_maturity,
  n_chargebacks / predictions AS chargeback_maturity,
  n_feedback / predictions AS feedback_maturity,
  n_flagged / predictions AS positive_rate,
  n_frauds / n_labelled AS fraud_rate,
  tp / (tp + fp) AS precision, tp / (tp + fn) AS recall, 2 * tp / (2 * tp + fp + fn) AS f1,
  arrayROCAUC(scores, truths) AS roc_auc,
  if(n_frauds = 0, nan, arrayAUCPR(scores, truths)) AS pr_auc,
  score_quantiles
FROM (
  SELECT model_version, {window}(event_time) AS window_start, count() AS predictions,
    countIf(labelled) AS n_labelled, countIf(chargeback_known) AS n_chargebacks,
    countIf(feedback_known) AS n_feedback, countIf(flagged) AS n_flagged,
    countIf(labelled AND is_fraud) AS n_frauds,
    countIf(labelled AND flagged AND is_fraud) AS tp,
    countIf(labelled AND flagged AND NOT is_fraud) AS fp,
    countIf(labelled AND NOT flagged AND is_fraud) AS fn,
    groupArrayIf(score, labelled) AS scores, groupArrayIf(toUInt8(is_fraud), labelled) AS truths,
    quantilesExactInclusive(0.5, 0.9, 0.99)(score) AS score_quantiles
  FROM {db}.prediction_labels GROUP BY model_version, window_start
)"""

#: the window views: name → the function giving a window's start from the event time
WINDOWS = {"hourly": "toStartOfHour", "daily": "toStartOfDay"}

AT_K = """CREATE OR REPLACE VIEW {db}.quality_at_k AS
SELECT e.model_version AS model_version, e.day AS day, {k} AS k,
  e.precision_at_k AS precision_at_k, e.labelled_at_k AS labelled_at_k,
  c.card_precision_at_k AS card_precision_at_k
FROM (
  SELECT model_version, toDate(event_time) AS day,
    arraySlice(arrayReverseSort(groupArray((score, labelled AND is_fraud, labelled))), 1, {k})
      AS top,
    arrayCount(t -> t.2, top) / length(top) AS precision_at_k,
    arrayCount(t -> t.3, top) / length(top) AS labelled_at_k
  FROM {db}.prediction_labels GROUP BY model_version, day
) AS e
INNER JOIN (
  SELECT model_version, day,
    arraySlice(arrayReverseSort(groupArray((card_score, card_fraud))), 1, {k}) AS top,
    arrayCount(t -> t.2, top) / length(top) AS card_precision_at_k
  FROM (
    SELECT model_version, toDate(event_time) AS day, card_id, max(score) AS card_score,
      max(labelled AND is_fraud) AS card_fraud
    FROM {db}.prediction_labels GROUP BY model_version, day, card_id
  ) GROUP BY model_version, day
) AS c ON e.model_version = c.model_version AND e.day = c.day"""


#: the label-free estimate (``quality_estimates``, written by ``stream-app estimate``) beside the
#: realised figures of the same version and window, as the labels have them so far
ESTIMATED = """CREATE OR REPLACE VIEW {db}.quality_estimated AS
SELECT e.model_version AS model_version, e.window AS window, e.window_start AS window_start,
  e.predictions AS predictions, q.labelled AS labelled, q.label_maturity AS label_maturity,
  q.chargeback_maturity AS chargeback_maturity,
  {pairs},
  e.reference_start AS reference_start, e.reference_end AS reference_end,
  e.estimated_time AS estimated_time
FROM {db}.quality_estimates AS e
LEFT JOIN (
  SELECT 'hour' AS window, * FROM {db}.quality_hourly
  UNION ALL SELECT 'day' AS window, * FROM {db}.quality_daily
) AS q ON q.model_version = e.model_version AND q.window = e.window
  AND toDateTime64(q.window_start, 3, 'UTC') = e.window_start
SETTINGS join_use_nulls = 1"""
ESTIMATED_METRICS = ("precision", "recall", "f1", "roc_auc")


def quality_views(database: str, top_k: int) -> list[str]:
    """(Re)create the quality views in ``database`` (after the tables they read)."""
    return [
        PREDICTION_LABELS.format(db=database),
        *(QUALITY.format(db=database, name=n, window=w) for n, w in WINDOWS.items()),
        AT_K.format(db=database, k=int(top_k)),
        ESTIMATED.format(
            db=database,
            pairs=",\n  ".join(
                f"e.{m} AS estimated_{m}, e.{m}_low AS {m}_low, e.{m}_high AS {m}_high, "
                f"q.{m} AS realised_{m}"
                for m in ESTIMATED_METRICS
            ),
        ),
    ]
