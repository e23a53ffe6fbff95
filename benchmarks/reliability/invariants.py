"""What must hold after every completed build (and, for S3, after every kill).

Each check returns plain numbers plus a list of human-readable violations, so the suite can both
report totals and say exactly what broke.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from judgeflow.batch.ledger import Ledger
from judgeflow.prompts.render import compile_spec
from judgeflow.simulator import expected_preference, expected_score
from judgeflow.simulator.judge import expected_verdict_text
from judgeflow.specs import JudgeSpec

# Judgment columns that must not depend on faults, retries or crashes (the verdicts themselves).
STABLE_JUDGMENT_COLUMNS = ("request_id", "row_id", "judge", "kind", "candidate_a", "candidate_b",
                           "order", "score", "verdict", "preferred", "judge_model", "template_hash",
                           "spec_hash", "content_hash")


@dataclass
class Check:
    """Numbers and violations from one invariant."""

    numbers: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


def find_run_dir(out_dir: Path) -> Path:
    """The one run folder ``{out}/{dataset}/{date}/{run_id}`` holding a manifest."""
    found = sorted(p.parent for p in out_dir.glob("*/*/*/manifest.json"))
    if len(found) != 1:
        raise AssertionError(f"expected one run folder with a manifest under {out_dir}, got {found}")
    return found[0]


def check_rows(run_dir: Path, lines_in: int) -> Check:
    """Every input line is exactly one of judged, quarantined, failed-with-reason."""
    c = Check()
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    counts = manifest["counts"]
    rows = pl.read_parquet(run_dir / "rows.parquet")
    quarantine = pl.read_parquet(run_dir / "quarantine.parquet")
    failed = pl.read_parquet(run_dir / "failed_rows.parquet")
    judgments = pl.read_parquet(run_dir / "judgments.parquet")
    judged_ids = set(judgments.filter(pl.col("status") == "ok")["row_id"].unique().to_list())
    failed_ids = set(failed["row_id"].to_list())
    valid_ids = set(rows["row_id"].to_list())
    c.numbers = {"rows_in": counts["rows_in"], "judged": counts["rows_judged"],
                 "quarantined": counts["rows_quarantined"], "failed": counts["rows_failed"]}
    if counts["rows_in"] != lines_in:
        c.violations.append(f"rows_in {counts['rows_in']} != {lines_in} input lines")
    total = counts["rows_judged"] + counts["rows_quarantined"] + counts["rows_failed"]
    if total != counts["rows_in"]:
        c.violations.append(f"rows_in {counts['rows_in']} != judged+quarantined+failed {total}")
    if quarantine.height != counts["rows_quarantined"] or rows.height + quarantine.height != lines_in:
        c.violations.append(f"{rows.height} valid + {quarantine.height} quarantined != {lines_in} lines")
    if judged_ids & failed_ids:
        c.violations.append(f"rows both judged and failed: {sorted(judged_ids & failed_ids)[:5]}")
    lost = valid_ids - judged_ids - failed_ids
    if lost:
        c.violations.append(f"{len(lost)} valid rows neither judged nor failed: {sorted(lost)[:5]}")
    if len(judged_ids) != counts["rows_judged"] or len(failed_ids) != counts["rows_failed"]:
        c.violations.append("row outcome files disagree with the manifest counts")
    if failed.height and failed["reason"].null_count():
        c.violations.append("failed_rows.parquet has rows without a reason")
    if quarantine.height and quarantine["reason"].null_count():
        c.violations.append("quarantine.parquet has rows without a reason")
    return c


def check_duplicates(run_dir: Path) -> Check:
    """No request judged twice in the dataset, no pair emitted twice."""
    judgments = pl.read_parquet(run_dir / "judgments.parquet")
    pairs = pl.read_parquet(run_dir / "pairs.parquet")
    dup_j = judgments.height - judgments["request_id"].n_unique()
    dup_p = pairs.height - pairs.select("row_id", "chosen_index", "rejected_index").n_unique() if pairs.height else 0
    c = Check(numbers={"duplicate_judgments": dup_j, "duplicate_pairs": dup_p})
    if dup_j:
        c.violations.append(f"{dup_j} duplicate request_ids in judgments.parquet")
    if dup_p:
        c.violations.append(f"{dup_p} duplicate pairs in pairs.parquet")
    return c


def ledger_batches(ledger_path: Path) -> dict[str, Any]:
    """What the batch ledger says was submitted, per custom_id, in submission order.

    Returns per provider the batches it knows (entries with a batch id), the round-1 entries, and
    for every RE-submission of a custom_id what its earlier outcomes were (from the collected
    records): ``resent_after_ok`` (a parsed, usable answer was paid for and asked again: a real
    double payment), ``resent_after_success`` (the provider answered before, parsed or not: what
    the simulator's ``custom_ids_paid_twice`` counts). Re-asking an unparseable reply is paid again
    on purpose (docs/batch.md); re-sending an errored/expired one costs nothing extra.
    """
    entries = sorted(Ledger(ledger_path).entries().values() if ledger_path.exists() else [],
                     key=lambda e: (e.submitted_at or e.intent_at, e.round))
    out: dict[str, Any] = {"openai": 0, "anthropic": 0, "round1": 0, "batch_ids": [],
                           "resent_after_ok": 0, "resent_after_success": 0, "resent": 0}
    history: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for e in entries:
        if not e.batch_id:
            continue
        out[e.provider] = out.get(e.provider, 0) + 1
        out["batch_ids"].append(e.batch_id)
        out["round1"] += e.round == 1
        ids = [orjson.loads(line)["custom_id"] for line in Path(e.chunk["path"]).read_bytes().splitlines()
               if line.strip()]
        collected = Path(ledger_path).parent / "collected" / e.entry_id.replace(":", "_")
        parts = sorted(collected.glob("*.parquet")) if collected.exists() else []
        outcome: dict[str, tuple[str, str]] = {}
        if parts:
            recs = pl.read_parquet(parts, columns=["request_id", "status", "error"])
            outcome = {r: (s, err or "") for r, s, err in recs.iter_rows()}
        for cid in ids:
            earlier = history.setdefault((e.provider, cid), [])
            if earlier:
                out["resent"] += 1
                out["resent_after_ok"] += any(s == "ok" for s, _ in earlier)
                out["resent_after_success"] += any(s == "ok" or err.startswith("unparseable")
                                                   for s, err in earlier)
            earlier.append(outcome.get(cid, ("unknown", "")))
    return out


def check_batches(sim_stats: dict[str, Any], ledger_path: Path, round1_expected: int) -> Check:
    """No batch submitted twice and no usable answer paid for twice.

    * every batch the provider created is exactly one ledger entry (a create lost in a crash
      window and then repeated would show as an extra batch);
    * round-1 entries equal the chunks of the fault-free run;
    * no custom_id is re-sent after a usable (parsed) answer;
    * the simulator's ``custom_ids_paid_twice`` equals the re-sends after a provider success that
      the ledger explains (deliberate re-asks of unparseable replies); more means a batch the
      ledger does not know about re-sent paid requests.
    """
    led = ledger_batches(ledger_path)
    created = {"openai": int(sim_stats["openai_batches_created"]),
               "anthropic": int(sim_stats["anthropic_batches_created"])}
    extra = sum(max(created[p] - led[p], 0) for p in created)
    dup_ids = len(led["batch_ids"]) - len(set(led["batch_ids"]))
    paid_twice = int(sim_stats.get("custom_ids_paid_twice", 0))
    unexplained = max(paid_twice - led["resent_after_success"], 0)
    double = extra + dup_ids + led["resent_after_ok"] + unexplained
    c = Check(numbers={"batches_created": created, "ledger_batches": {p: led[p] for p in created},
                       "round1_entries": led["round1"], "round1_expected": round1_expected,
                       "custom_ids_paid_twice": paid_twice, "deliberate_reasks": led["resent_after_success"],
                       "resent_after_ok": led["resent_after_ok"], "resent": led["resent"],
                       "double_submissions": double})
    if extra:
        c.violations.append(f"provider created {created} batches, ledger holds {led['openai']}/{led['anthropic']}")
    if dup_ids:
        c.violations.append(f"{dup_ids} batch ids appear in two ledger entries")
    if led["round1"] != round1_expected:
        c.violations.append(f"{led['round1']} round-1 batches, fault-free run had {round1_expected}")
    if led["resent_after_ok"]:
        c.violations.append(f"{led['resent_after_ok']} custom_ids re-sent after a usable answer")
    if unexplained:
        c.violations.append(f"simulator saw {paid_twice} custom_ids paid twice, the ledger explains "
                            f"{led['resent_after_success']} (re-asks of unparseable replies)")
    return c


MANIFEST = "manifest.json"


def _run_prefix(key: str) -> str:
    """The run prefix an object belongs to: the folder above ``v/{version}/`` for versioned
    files (judgeflow.storage.layout), else the object's own folder."""
    head, sep, _ = key.partition("/v/")
    if sep and "/" in key[len(head) + len(sep):]:
        return head + "/"
    return key.rsplit("/", 1)[0] + "/" if "/" in key else ""


def read_published(client: Any, bucket: str, manifest_key: str) -> tuple[dict[str, Any], list[str]]:
    """A reader's view of one published run: the manifest, then exactly the objects it lists,
    each streamed and compared with its listed sha256 and size. Returns (manifest, problems).

    Written here, independently of ``judgeflow.storage``, so the suite does not trust the code
    it checks. Keys are relative to the manifest's folder; manifests without keys (the layout
    before versioned objects) list files beside them.
    """
    prefix = manifest_key[: -len(MANIFEST)]
    manifest = orjson.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    problems: list[str] = []
    for name, info in sorted(manifest.get("files", {}).items()):
        key = prefix + (info.get("key") or name)
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
        except client.exceptions.NoSuchKey:
            problems.append(f"{name} missing ({key})")
            continue
        digest, size = hashlib.sha256(), 0
        for block in iter(lambda: body.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
        if digest.hexdigest() != info["sha256"] or size != info["bytes"]:
            problems.append(f"{name} sha256/size differs ({key})")
    return manifest, problems


def check_s3_manifests(client: Any, bucket: str) -> Check:
    """Every manifest in ``bucket`` names a complete run: each object it lists is there with its
    sha256 and size. A run prefix with objects but no manifest is ``absent`` (a reader ignores
    it); objects no manifest lists (a superseded version, an upload in flight) are counted as
    ``unlisted_objects``. Never a manifest with missing or different files."""
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    manifests = sorted(k for k in keys if k == MANIFEST or k.endswith("/" + MANIFEST))
    run_prefixes = {_run_prefix(k) for k in keys if k not in manifests}
    c = Check(numbers={"complete": 0, "absent": 0, "partial": 0, "unlisted_objects": 0})
    c.numbers["absent"] = len(run_prefixes - {m[: -len(MANIFEST)] for m in manifests})
    listed: set[str] = set()
    for manifest_key in manifests:
        manifest, bad = read_published(client, bucket, manifest_key)
        prefix = manifest_key[: -len(MANIFEST)]
        listed.update(prefix + (info.get("key") or name) for name, info in manifest.get("files", {}).items())
        if bad:
            c.numbers["partial"] += 1
            c.violations.append(f"s3://{bucket}/{manifest_key} is partial: {bad[:5]}")
        else:
            c.numbers["complete"] += 1
    c.numbers["unlisted_objects"] = len(keys - listed - set(manifests))
    return c


def check_published_is_local(client: Any, bucket: str, run_dir: Path) -> Check:
    """The manifest in S3 is byte-identical to the run folder's and every object it lists holds
    the listed bytes, so the published files ARE the local dataset the other checks read."""
    c = Check()
    keys = [k for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for k in (o["Key"] for o in page.get("Contents", []))
            if k.endswith(f"/{run_dir.name}/{MANIFEST}")]
    if len(keys) != 1:
        c.violations.append(f"expected one published manifest for {run_dir.name}, found {keys}")
        return c
    body = client.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    if body != (run_dir / MANIFEST).read_bytes():
        c.violations.append(f"s3://{bucket}/{keys[0]} differs from {run_dir / MANIFEST}")
    _, bad = read_published(client, bucket, keys[0])
    c.violations += [f"s3://{bucket}/{keys[0]}: {problem}" for problem in bad]
    c.numbers = {"objects_checked": len(orjson.loads(body).get("files", {})), "bad": len(bad)}
    return c


def _stable(judgments: pl.DataFrame) -> pl.DataFrame:
    return judgments.select(STABLE_JUDGMENT_COLUMNS).sort("request_id")


def compare_with_reference(run_dir: Path, ref_dir: Path) -> Check:
    """The published dataset equals the fault-free run's.

    Judgments are compared on their verdict columns (tokens, cost, attempts and error texts
    legitimately differ under faults). A judgment that failed only in the faulted run (its
    retries were exhausted) is reported, and its rows are left out of the pairs comparison; every
    other pair must be identical.
    """
    run_j = pl.read_parquet(run_dir / "judgments.parquet")
    ref_j = pl.read_parquet(ref_dir / "judgments.parquet")
    c = Check()
    if set(run_j["request_id"]) != set(ref_j["request_id"]):
        c.violations.append("judged request ids differ from the fault-free run")
    failed_here = run_j.filter(pl.col("status") != "ok")
    failed_ref = ref_j.filter(pl.col("status") != "ok")
    affected_rows = set(failed_here["row_id"]) | set(failed_ref["row_id"])
    ok_both = _stable(run_j.filter(pl.col("status") == "ok")).join(
        _stable(ref_j.filter(pl.col("status") == "ok")).select("request_id"), on="request_id", how="semi")
    ref_ok = _stable(ref_j.filter(pl.col("status") == "ok")).join(ok_both.select("request_id"),
                                                                    on="request_id", how="semi")
    differing = ok_both.height - ok_both.join(ref_ok, on=list(STABLE_JUDGMENT_COLUMNS), how="semi",
                                              nulls_equal=True).height
    if differing:
        c.violations.append(f"{differing} judgments have a different verdict than the fault-free run")
    pairs = pl.read_parquet(run_dir / "pairs.parquet")
    ref_pairs = pl.read_parquet(ref_dir / "pairs.parquet")
    keep = ~pl.col("row_id").is_in(sorted(affected_rows))
    mine = pairs.filter(keep).sort("row_id", "chosen_index", "rejected_index")
    theirs = ref_pairs.filter(keep).sort("row_id", "chosen_index", "rejected_index")
    pairs_equal = mine.equals(theirs)
    if not pairs_equal:
        c.violations.append(f"pairs differ from the fault-free run ({mine.height} vs {theirs.height} "
                            f"rows outside the {len(affected_rows)} rows with failed judgments)")
    c.numbers = {"judgments_compared": ok_both.height, "judgments_differing": differing,
                 "judgments_failed_after_retries": failed_here.height,
                 "rows_left_out_of_pair_comparison": len(affected_rows),
                 "pairs_compared": mine.height, "pairs_equal": pairs_equal,
                 "identical": pairs_equal and differing == 0 and failed_here.height == failed_ref.height
                 and pairs.sort("row_id", "chosen_index", "rejected_index").equals(
                     ref_pairs.sort("row_id", "chosen_index", "rejected_index"))}
    return c


def check_verdicts(run_dir: Path, specs: list[JudgeSpec], hostile_ids: list[str]) -> Check:
    """Every parsed verdict equals the verdict the judge actually gave.

    The simulator's judge answers from the prompt it receives, so rendering each request's prompt
    again and asking ``expected_verdict_text`` says what the judge said; judgeflow's parsed
    ``score``/``verdict`` must equal it even when a candidate carries "[RESULT] 5", fake headers or
    "ignore previous instructions" (``verdicts_misparsed`` must be 0). Separately, the verdict is
    compared with ``expected_score``/``expected_preference`` of the TRUE candidate texts:
    ``judge_steered`` counts requests where content fooled the judge itself (a candidate that
    forges the template's section header changes what any reader of the prompt sees as the
    candidate). That is a property of the prompt template, reported but not a parsing fault.
    """
    rows = pl.read_parquet(run_dir / "rows.parquet").select("row_id", "instruction", "responses", "reference")
    by_id = {r["row_id"]: r for r in rows.iter_rows(named=True)}
    compiled = {s.name: compile_spec(s) for s in specs}
    judgments = pl.read_parquet(run_dir / "judgments.parquet").filter(pl.col("status") == "ok")
    c = Check(numbers={"verdicts_checked": 0, "hostile_verdicts_checked": 0, "verdicts_misparsed": 0,
                       "judge_steered": 0, "judge_steered_examples": []})
    hostile = set(hostile_ids)
    for j in judgments.select("row_id", "judge", "kind", "candidate_a", "candidate_b", "score",
                              "verdict").iter_rows(named=True):
        row = by_id[j["row_id"]]
        cands = row["responses"]
        a = cands[j["candidate_a"]]
        b = cands[j["candidate_b"]] if j["candidate_b"] is not None else None
        prompt = compiled[j["judge"]].render(row["instruction"], a, b, row["reference"]).user
        judge_said = expected_verdict_text(prompt)
        if j["kind"] == "absolute":
            truth = str(expected_score(a))
            got = str(int(j["score"])) if j["score"] is not None else None
        else:
            truth = expected_preference(a, b or "")
            got = j["verdict"]
        c.numbers["verdicts_checked"] += 1
        c.numbers["hostile_verdicts_checked"] += j["row_id"] in hostile
        if got != judge_said:
            c.numbers["verdicts_misparsed"] += 1
            if len(c.violations) < 10:
                c.violations.append(f"{j['judge']} on {j['row_id']} ({j['candidate_a']},"
                                    f"{j['candidate_b']}): parsed {got!r}, the judge said {judge_said!r}")
        if judge_said != truth:
            c.numbers["judge_steered"] += 1
            if len(c.numbers["judge_steered_examples"]) < 3:
                c.numbers["judge_steered_examples"].append(
                    f"{j['judge']} {j['row_id']} ({j['candidate_a']},{j['candidate_b']})")
    return c
