"""`modelstream`: one command for the local stack, the job, publishing and reading.

Every setting (bootstrap servers, topic names, ports, intervals, ...) is a flag before the subcommand
and an environment variable MODELSTREAM_<NAME>; both feed modelstream.settings.Settings.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Any

from client import (
    catalog,
    demo,
    encode,
    job_control,
    local_cluster,
    local_kafka,
    messages,
    publish,
    rollout,
    stats_service,
    topics,
)
from client.flink_rest import FlinkRest, FlinkRestError
from modelstream import logs
from modelstream.settings import ENV_PREFIX, Settings
from protobufs.modelstream_pb2 import DeadLetter, RolloutPolicy, ScoreResult

Handler = Callable[[argparse.Namespace, Settings], int]


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "settings", f"each also read from {ENV_PREFIX}<NAME>, e.g. {ENV_PREFIX}BOOTSTRAP; flags win"
    )
    defaults = Settings()
    for f in fields(Settings):
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f"setting_{f.name}",
            type=int if f.type == "int" else str,
            metavar=f.name.upper(),
            help=f"{f.metadata.get('help', '')} (default: {getattr(defaults, f.name)!s})",
        )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {f.name: getattr(args, f"setting_{f.name}", None) for f in fields(Settings)}
    return Settings.from_env().replace(**overrides)


# -- handlers --------------------------------------------------------------------------------------


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "start" and args.foreground:
        return local_kafka.run_foreground(settings)
    if args.action == "start":
        pid = local_kafka.start(settings)
        print(f"kafka running on {settings.bootstrap} (pid {pid}, data in {settings.kafka_data_dir})")
    elif args.action == "stop":
        print("kafka stopped" if local_kafka.stop(settings) else "kafka was not running")
    else:
        running = local_kafka.running_pid(settings)
        print(f"kafka running (pid {running}) on {settings.bootstrap}" if running else "kafka not running")
        return 0 if running else 1
    return 0


def _job(args: argparse.Namespace, settings: Settings) -> int:
    if args.exactly_once:
        settings = settings.replace(delivery="exactly-once")
    if args.from_path:
        settings = settings.replace(restore_from=args.from_path)
    if args.parallelism:
        settings = settings.replace(parallelism=args.parallelism)
    if args.jobmanager:
        settings = settings.replace(jobmanager=args.jobmanager)
    if args.action == "status":
        return _job_status(args, settings)
    rest = FlinkRest(settings.jobmanager)
    if args.action in ("savepoint", "stop"):
        job = rest.running_job()
        if job is None:
            print(f"no running modelstream job at {settings.jobmanager}", file=sys.stderr)
            return 1
        if args.action == "stop" and not args.savepoint:
            rest.cancel(job)
            print(f"cancelled job {job}")
            return 0
        directory = (Path(args.dir) if args.dir else Path(settings.home) / "savepoints").resolve().as_uri()
        path = rest.savepoint(job, directory, stop=args.action == "stop")
        print(path)
        return 0
    if args.action == "submit" or (args.action == "resume" and args.jobmanager):
        return job_control.submit(settings, settings.jobmanager, detached=not args.attached)
    return job_control.run_embedded(settings)


JOB_STATUS_UNREACHABLE = 3


def _job_status(args: argparse.Namespace, settings: Settings) -> int:
    """0: the job runs (with a checkpoint younger than --max-checkpoint-age, if given); 1: it does not;
    3: no Flink REST API answers."""
    try:
        state = job_control.status(settings)
    except FlinkRestError as e:
        if args.json:
            print(json.dumps({"running": False, "error": str(e)}))
        print(f"no Flink REST API answers at {settings.jobmanager}: {e}", file=sys.stderr)
        return JOB_STATUS_UNREACHABLE
    if state is None:
        if args.json:
            print(json.dumps({"running": False, "state": None, "rest": f"http://{settings.jobmanager}"}))
        else:
            print(f"no modelstream job known at {settings.jobmanager}")
        return 1
    healthy = state["running"]
    last = state["checkpoints"]["last"]
    if args.max_checkpoint_age is not None and healthy:
        age = last["age_s"] if last else state["uptime_s"]
        healthy = age <= args.max_checkpoint_age
        state["checkpoint_fresh"] = healthy
    if args.json:
        print(json.dumps(state))
    else:
        checkpoint = (
            f"last checkpoint {last['id']} {last['age_s']:.0f}s ago ({last['path']})"
            if last
            else "no checkpoint yet"
        )
        restored = state["checkpoints"]["restored"]
        print(
            f"job {state['job_id']} {state['state']} for {state['uptime_s']:.0f}s, "
            f"{state['restarts']} restarts, {checkpoint}"
            + (f"; restored from checkpoint {restored['id']}" if restored else "")
        )
    return 0 if healthy else 1


def _cluster(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "start":
        overview = local_cluster.start(settings, args.taskmanagers, args.slots)
        where = local_cluster.cluster_dir(settings)
        print(f"Flink cluster on http://{settings.jobmanager}: {overview['taskmanagers']} TaskManagers, "
              f"{overview['slots-total']} slots; config and logs in {where}")  # fmt: skip
        return 0
    if args.action == "stop":
        print("cluster stopped" if local_cluster.stop(settings) else "no cluster was running")
        return 0
    state = local_cluster.status(settings)
    if state is None:
        print(f"no Flink cluster answers on {settings.jobmanager}")
        return 1
    if args.json:
        print(json.dumps(state))
        return 0
    slots = f"{state['slots-available']}/{state['slots-total']} slots free"
    print(f"Flink {state['flink-version']} on {settings.jobmanager}: {state['taskmanagers']} TaskManagers, "
          f"{slots}, {state['jobs-running']} jobs running")  # fmt: skip
    return 0


def _publish_model(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file) if args.file else None
    if (path is None) == (not args.location):
        raise ValueError("give either a model FILE (or SavedModel directory) or --location, not both")
    model_type = args.type or messages.model_type_from_path(path or Path(args.location))
    name = args.name or (path or Path(args.location)).name
    descriptor = messages.model_descriptor(
        path, name, args.data_type, model_type, args.description, args.version, args.location or "",
        args.input_name, args.output_name, args.signature, _input_fields(args.input_fields),
    )  # fmt: skip
    descriptor.staged = args.stage
    publish.publish_model(settings, descriptor)
    carried = f"{len(descriptor.data)} bytes" if not args.location else f"location {args.location}"
    staged = ": staged, serving when a rollout routes to it" if args.stage else ""
    print(f"published {model_type} model {name!r} ({carried}) for data type {descriptor.dataType!r} "
          f"to {settings.models_topic}{staged}")  # fmt: skip
    return 0


def _input_fields(text: str) -> list[str]:
    """--input-fields a,b,c as a list; an empty or repeated name is an error."""
    if not text:
        return []
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ValueError(f"--input-fields {text!r} has an empty field name")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"--input-fields repeats {', '.join(repeated)}")
    return names


def _data_encoding(args: argparse.Namespace, kind: str) -> str:
    """The encoding publish-data uses (json, oip, protobuf, or wine for WineRecords), after checking
    that the flags given fit it."""
    encoding: str = args.encoding
    if encoding == "auto":
        encoding = "protobuf" if args.schema or args.message else "wine" if kind == "wine" else "json"
    if encoding == "protobuf" and not (args.schema and args.message):
        raise ValueError(
            "--encoding protobuf needs --schema FILE.desc (or FILE.proto) and --message NAME "
            "(the full name of the record message, e.g. loans.LoanApplication)"
        )
    if encoding != "protobuf":
        for flag, given in (
            ("--schema", args.schema), ("--message", args.message), ("--confluent", args.confluent),
            ("--schema-id", args.schema_id is not None),
        ):  # fmt: skip
            if given:
                raise ValueError(f"{flag} is for --encoding protobuf, not {encoding}")
    if args.schema_id is not None and not args.confluent:
        raise ValueError("--schema-id goes with --confluent")
    if encoding != "oip":
        for flag, given in (("--oip-rows", args.oip_rows is not None), ("--oip-raw", args.oip_raw)):
            if given:
                raise ValueError(f"{flag} is for --encoding oip, not {encoding}")
    if encoding == "wine" and args.data_type_header:
        raise ValueError(
            "--data-type-header is for json, oip and protobuf records; a WineRecord has dataType"
        )
    return encoding


def _publish_data(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    kind = encode.file_kind(path)
    encoding = _data_encoding(args, kind)
    topic = args.topic or settings.data_topic
    if args.count is not None and args.count < 0:
        raise ValueError("--count must not be negative")
    if encoding == "wine":
        sent = publish.publish_records(
            settings.replace(data_topic=topic), path, args.data_type, args.count, args.rate, args.id_prefix
        )
        print(f"published {sent} WineRecords of data type {args.data_type!r} to {topic}")
        return 0
    rows = encode.read_rows(path)
    message = None
    if encoding == "protobuf":
        message = encode.message_class(encode.read_descriptor_set(Path(args.schema)), args.message)
    options = encode.Encoding(
        kind=encoding,
        data_type=args.data_type,
        id_prefix=args.id_prefix or uuid.uuid4().hex[:8],
        oip_rows=1 if args.oip_rows is None else args.oip_rows,
        oip_raw=args.oip_raw,
        message=message,
        schema_id=(1 if args.schema_id is None else args.schema_id) if args.confluent else None,
        data_type_header=args.data_type_header,
    )

    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    for _ in encode.encode_rows(rows, options, None, now_ms):
        pass  # every row encodes (else a ValueError naming it) before anything is sent
    records = encode.encode_rows(rows, options, args.count, now_ms)
    sent = publish.publish_encoded(settings, topic, records, args.rate)
    what = {"json": "JSON objects", "oip": "OIP ModelInferRequest rows", "protobuf": "protobuf records"}
    print(f"published {sent} {what[encoding]} of data type {args.data_type!r} to {topic}")
    return 0


def _publish_schema(args: argparse.Namespace, settings: Settings) -> int:
    file_descriptor_set = encode.read_descriptor_set(Path(args.file))
    schema = encode.record_schema(args.data_type, args.message, file_descriptor_set)
    publish.publish_record_schema(settings, schema)
    print(f"published schema {args.message} for data type {args.data_type!r} to {settings.models_topic}")
    return 0


def _print_messages(
    args: argparse.Namespace,
    settings: Settings,
    topic: str,
    decode: Callable[[bytes], Any],
    line: Callable[[Any], str],
) -> int:
    for msg in topics.consume(settings, topic, follow=args.follow, limit=args.limit):
        value = msg.value()
        if value is None:
            continue
        decoded = decode(value)
        print(json.dumps(messages.to_dict(decoded)) if args.json else line(decoded), flush=True)
    return 0


def _score_line(s: Any) -> str:
    if s.label:
        score = s.label
    elif s.HasField("value"):
        score = f"{s.value:.4f}"
    else:
        score = ",".join(sorted(s.outputs)) or "-"
    routed = (
        f"  {ScoreResult.Role.Name(s.role).lower()} by policy {s.policy_version}" if s.policy_version else ""
    )
    return (
        f"{s.record_id or '-':>14}  {s.data_type}  score={score:<8} model={s.model_name} "
        f"version={s.model_version}  {s.scoring_time_ns / 1000:.0f}us{routed}"
    )


ROLLOUT_REJECTED = 4


def _rollout(args: argparse.Namespace, settings: Settings) -> int:
    policy = rollout.rollout_policy(
        args.data_type,
        canary=args.canary,
        percent=args.percent,
        weighted=args.weights,
        ramp=args.ramp,
        ramp_from=args.ramp_from,
        ramp_to=args.ramp_to,
        over=args.over,
        start_ts=args.start_ts,
        shadows=tuple(args.shadow),
        retain=args.retain,
        gate=args.gate,
    )
    snapshot = catalog.latest_stats(settings).get(args.data_type)
    if snapshot is not None and not args.force:
        unknown = rollout.unknown_versions(policy, snapshot)
        if unknown:
            loaded = ", ".join(rollout.loaded_versions(snapshot)) or "none"
            print(f"modelstream: the job has not reported {', '.join(unknown)} loaded for {args.data_type!r} "
                  f"(loaded: {loaded}); publish it first (publish-model --stage) or pass --force",
                  file=sys.stderr)  # fmt: skip
            return ROLLOUT_REJECTED
    return _publish_policy(settings, policy)


def _publish_policy(settings: Settings, policy: RolloutPolicy) -> int:
    publish.publish_policy(settings, policy)
    print(rollout.describe(policy))
    print(f"published to {settings.models_topic}; a policy the job cannot apply goes to "
          f"{settings.dead_letters_topic} with its reason, and the current one keeps serving")  # fmt: skip
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    return _publish_policy(settings, rollout.action_policy(args.data_type, RolloutPolicy.ROLLBACK))


def _promote(args: argparse.Namespace, settings: Settings) -> int:
    return _publish_policy(
        settings, rollout.action_policy(args.data_type, RolloutPolicy.PROMOTE, args.version)
    )


def _policy(args: argparse.Namespace, settings: Settings) -> int:
    snapshot = catalog.latest_stats(settings).get(args.data_type)
    if snapshot is None:
        print(f"no stats for data type {args.data_type!r} yet", file=sys.stderr)
        return 1
    versions: list[dict[str, Any]] = [
        {"version": m.model.version, "model": m.model.name, "role": m.role or "served",
         "share": m.share if m.role else 100.0, "usage": m.usage, "errors": m.errors, "p99_ns": m.p99_ns}
        for m in (snapshot.versions or [snapshot.current])
    ]  # fmt: skip
    policy = messages.to_dict(snapshot.policy) if snapshot.HasField("policy") else None
    if args.json:
        print(json.dumps({"data_type": args.data_type, "policy": policy, "versions": versions}))
        return 0
    print(
        rollout.describe(snapshot.policy)
        if policy
        else f"{args.data_type}: no policy, the latest version serves"
    )
    for v in versions:
        print(f"  {v['version']:<20} {v['model']:<28} {v['role']:<9} {v['share']:6.1f} %  "
              f"usage={v['usage']:<9} errors={v['errors']:<5} p99={v['p99_ns'] / 1000:.0f}us")  # fmt: skip
    return 0


def _dead_letter_line(d: Any) -> str:
    where = f"{d.source_topic}" + (f"[{d.partition}]@{d.offset}" if d.HasField("offset") else "")
    model = f" model={d.model_name} {d.model_version}" if d.model_name else ""
    reason = DeadLetter.Reason.Name(d.reason)
    return f"{reason:<24} {where}{model} data_type={d.data_type or '-'}: {d.message} ({len(d.raw)} bytes)"


def _scores(args: argparse.Namespace, settings: Settings) -> int:
    topic = settings.shadow_scores_topic if args.shadow else settings.scores_topic
    return _print_messages(args, settings, topic, messages.decode_score, _score_line)


def _dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    return _print_messages(
        args, settings, settings.dead_letters_topic, messages.decode_dead_letter, _dead_letter_line
    )


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    if args.data_type == "serve":
        server = stats_service.serve(settings, host=args.host, port=args.port)
        port = server.server_address[1]
        print(
            f"stats service on http://{args.host}:{port} "
            "(GET /models, /stats/<data type>, /healthz, /readyz)",
            flush=True,
        )

        def stop(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt  # ends serve_forever in this, the main, thread

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # SIGINT or SIGTERM: a requested stop
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.server_close()
            server.store.stop()  # type: ignore[attr-defined]
        return 0
    if args.url:
        base = args.url.rstrip("/")
        types = (
            [args.data_type]
            if args.data_type
            else [m["data_type"] for m in _get_json(base + "/models")["models"]]
        )
        rows = [_get_json(f"{base}/stats/{urllib.parse.quote(t)}") for t in types]
    else:
        latest = catalog.latest_stats(settings)
        if args.data_type and args.data_type not in latest:
            print(f"no stats for data type {args.data_type!r}", file=sys.stderr)
            return 1
        chosen = [latest[args.data_type]] if args.data_type else list(latest.values())
        rows = [stats_service.stats_detail(s) for s in chosen]
    print(json.dumps(rows) if args.json else _stats_table(rows, history=bool(args.data_type)))
    return 0


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _stats_table(rows: list[dict[str, Any]], history: bool) -> str:
    header = f"{'data type':<14} {'model':<30} {'version':<16} {'since':<19} {'usage':>9} {'avg us':>8} " \
             f"{'p50 us':>8} {'p99 us':>8} {'min us':>8} {'max us':>8} {'errors':>6}  role"  # fmt: skip
    lines = [header]
    for row in rows:
        # under a policy, every loaded version with its role and share; else the serving model
        shown = row.get("versions") or [row.get("current", {})]
        for stats in [*shown, *(row.get("history", []) if history else [])]:
            model = stats.get("model", {})
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(model.get("since", 0)) / 1000))
            lines.append(
                f"{row.get('data_type', ''):<14} {model.get('name', ''):<30} "
                f"{model.get('version', ''):<16} {since:<19} {int(stats.get('usage', 0)):>9} "
                f"{int(stats.get('avg_ns', 0)) / 1000:>8.1f} {int(stats.get('p50_ns', 0)) / 1000:>8.1f} "
                f"{int(stats.get('p99_ns', 0)) / 1000:>8.1f} {int(stats.get('min_ns', 0)) / 1000:>8.1f} "
                f"{int(stats.get('max_ns', 0)) / 1000:>8.1f} {int(stats.get('errors', 0)):>6}  "
                + (f"{stats['role']} {float(stats.get('share', 0)):g} %" if stats.get("role") else "")
            )
    return "\n".join(lines)


def _models(args: argparse.Namespace, settings: Settings) -> int:
    models = catalog.published_models(settings, args.data_type)
    if args.json:
        for model in models:
            print(json.dumps(model))
        return 0
    print(
        f"{'data type':<14} {'name':<32} {'version':<20} {'type':<16} {'size':>9} {'published':<19} serving"
    )
    for m in models:
        published = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["published_at"] / 1000))
        size = m["location"] or str(m["size"])
        serving = "  <==" if m["serving"] else ""
        print(f"{m['data_type']:<14} {m['name']:<32} {m['version']:<20} {m['type']:<16} {size:>9} "
              f"{published:<19} {serving}")  # fmt: skip
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    return demo.run(
        settings,
        rate=args.rate,
        swap_every_s=args.swap_every,
        print_every=args.print_every,
        duration_s=args.duration,
    )


# -- parser ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelstream",
        description="Real-time model serving in Apache Flink: models are messages on a Kafka topic, "
        "hot-swapped per data type while records are scored.",
        epilog="Quick start: `modelstream demo`. See README.md for the data flow and the wire format.",
    )
    _add_settings_flags(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command(
        "kafka", _kafka, "run a local single-node KRaft Kafka broker on 127.0.0.1 (creates the topics)"
    )
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument(
        "--foreground",
        action="store_true",
        help="start: run until SIGTERM or SIGINT (a supervisor's way), then stop the broker",
    )

    p = command(
        "job",
        _job,
        "run the scoring job embedded (local Flink mini-cluster) or on a cluster; savepoint, stop, resume it",
    )
    p.add_argument(
        "action",
        choices=["run", "submit", "savepoint", "stop", "resume", "status"],
        help="run: embedded, in the foreground (resumes from the newest checkpoint; SIGTERM/SIGINT stop "
        "it, a second one forces); submit: `flink run` to --jobmanager; savepoint: take one; "
        "status: state, uptime, restarts, last checkpoint (exit 0 running, 1 not, 3 no REST API); "
        "stop: cancel (with --savepoint: stop with a savepoint, printing its path); "
        "resume: start from --from PATH (embedded, or on --jobmanager)",
    )
    p.add_argument(
        "--jobmanager", help="HOST:PORT of the Flink REST endpoint (default: the jobmanager setting)"
    )
    p.add_argument("--attached", action="store_true", help="submit: wait for the job instead of detaching")
    p.add_argument(
        "--from", dest="from_path", help="run/submit/resume: a savepoint or checkpoint to start from"
    )
    p.add_argument("--parallelism", type=int, help="run/submit/resume: the job's parallelism")
    p.add_argument(
        "--exactly-once",
        action="store_true",
        help="Kafka transactions: one committed result per record, visible when the checkpoint completes",
    )
    p.add_argument("--savepoint", action="store_true", help="stop: take a savepoint while stopping")
    p.add_argument("--json", action="store_true", help="status: one JSON object")
    p.add_argument(
        "--max-checkpoint-age",
        type=float,
        metavar="SECONDS",
        help="status: also exit 1 when the last checkpoint (or, before the first, the start) is older",
    )
    p.add_argument("--dir", help="savepoint/stop: savepoint directory (default: <home>/savepoints)")

    p = command("cluster", _cluster, "a standalone Flink cluster on 127.0.0.1 from the pip-installed Flink")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--taskmanagers", type=int, default=2, help="start: how many TaskManagers (default: 2)")
    p.add_argument("--slots", type=int, default=2, help="start: task slots per TaskManager (default: 2)")
    p.add_argument("--json", action="store_true", help="status: the REST overview as JSON")

    p = command(
        "publish-model", _publish_model, "publish a model file as a ModelDescriptor on the models topic"
    )
    p.add_argument(
        "file", nargs="?", help="the model: .onnx, .pmml, a TensorFlow .pb, a SavedModel directory"
    )
    p.add_argument(
        "--location", help="publish a path instead of bytes (must be under the job's --model-roots)"
    )
    p.add_argument("--input-name", default="", help="input tensor / signature input (default: inferred)")
    p.add_argument("--output-name", default="", help="output tensor / signature output (default: inferred)")
    p.add_argument(
        "--signature", default="", help="SavedModel signature (default: serving_default or the only one)"
    )
    p.add_argument("--name", help="model name (default: the file name)")
    p.add_argument("--data-type", default="wine", help="data type the model scores (default: wine)")
    p.add_argument(
        "--type", choices=sorted(messages.MODEL_TYPES), help="model format (default: from the file name)"
    )
    p.add_argument("--description", default="")
    p.add_argument(
        "--stage",
        action="store_true",
        help="load and validate it but keep the serving version until a rollout routes records to it",
    )
    p.add_argument("--version", default="", help="version to report in scores (default: a content hash)")

    p.add_argument(
        "--input-fields",
        default="",
        metavar="A,B,C",
        help="record fields, in order, making up the model's one [n, k] input (default: inputs bind to "
        "record fields by name)",
    )

    p = command(
        "publish-data",
        _publish_data,
        "replay a file as records on a data topic: the wine CSV as WineRecords, a .jsonl or a .csv with a "
        "header row as JSON objects, OIP ModelInferRequests or protobuf messages of your own schema",
    )
    p.add_argument(
        "file",
        help="the tutorial's wine CSV (';', no header); a .csv with a header row (',', values typed: "
        "ints, floats, true/false, empty = null, else strings); or a .jsonl (one object per line)",
    )
    p.add_argument(
        "--data-type", default="wine", help="records' dataType where a row has none (default: wine)"
    )
    p.add_argument("--topic", help="the data topic to send to (default: the data_topic setting)")
    p.add_argument(
        "--encoding",
        choices=encode.ENCODINGS,
        default="auto",
        help="json: one JSON object per record; oip: Open Inference Protocol ModelInferRequests "
        "(model_name = data type); protobuf: messages of --schema; auto (default): protobuf with "
        "--schema, WineRecords for the wine CSV, else json",
    )
    p.add_argument(
        "--schema", metavar="FILE", help="protobuf: a FileDescriptorSet (.desc, .pb) or a .proto to compile"
    )
    p.add_argument("--message", metavar="NAME", help="protobuf: full name of the record message")
    p.add_argument(
        "--confluent",
        action="store_true",
        help="protobuf: Confluent Schema Registry framing (magic 0, schema id, message index [0])",
    )
    p.add_argument(
        "--schema-id", type=int, help="protobuf with --confluent: the schema id in the framing (default: 1)"
    )
    p.add_argument("--oip-rows", type=int, metavar="N", help="oip: rows per request (default: 1)")
    p.add_argument(
        "--oip-raw",
        action="store_true",
        help="oip: tensors in raw_input_contents (little-endian) instead of typed contents",
    )
    p.add_argument(
        "--data-type-header",
        action="store_true",
        help="also send the Kafka header data-type: DATA_TYPE (for a schema without a dataType field)",
    )
    p.add_argument("--rate", type=float, help="records per second (default: as fast as possible)")
    p.add_argument(
        "--count", type=int, help="records to send, cycling through the file (default: each row once)"
    )
    p.add_argument(
        "--id-prefix", help="record_id is PREFIX-N where a row has none (default: a random prefix)"
    )

    p = command(
        "publish-schema",
        _publish_schema,
        "publish the protobuf schema of a data type's records (a RecordSchema) on the models topic",
    )
    p.add_argument(
        "file",
        help="a FileDescriptorSet (.desc, .pb: protoc --include_imports --descriptor_set_out) or a .proto",
    )
    p.add_argument(
        "--message", required=True, metavar="NAME", help="full name of the record message, e.g. loans.Loan"
    )
    p.add_argument("--data-type", required=True, help="the data type whose records use this message")

    for name, handler, what in (
        ("scores", _scores, "print the scores the job wrote, one line each"),
        (
            "dead-letters",
            _dead_letters,
            "print the dead letters (rejected records and models) with their reasons",
        ),
    ):
        p = command(name, handler, what)
        p.add_argument("--follow", "-f", action="store_true", help="keep waiting for new messages")
        p.add_argument("--limit", type=int, help="stop after N messages")
        p.add_argument(
            "--json", action="store_true", help="one JSON object per line, keys named as the message fields"
        )
        if name == "scores":
            p.add_argument(
                "--shadow", action="store_true", help="the shadow versions' results (shadow-scores topic)"
            )

    p = command(
        "rollout",
        _rollout,
        "route a data type's records among its loaded versions: canary, A/B weights, a ramp over record "
        "time, shadows (publish the candidate first, with publish-model --stage)",
    )
    p.add_argument("data_type", metavar="DATA_TYPE")
    p.add_argument("--canary", metavar="VERSION", help="this version takes --percent of the records")
    p.add_argument("--percent", type=float, metavar="P", help="--canary: its share, 0-100")
    p.add_argument(
        "--weights", metavar="V=W,...", help="A/B: versions and relative weights, e.g. v1=50,v2=50"
    )
    p.add_argument("--ramp", metavar="VERSION", help="phase this version in over --over of record time")
    p.add_argument(
        "--from", dest="ramp_from", type=float, default=0.0, help="--ramp: start share (default 0)"
    )
    p.add_argument("--to", dest="ramp_to", type=float, default=100.0, help="--ramp: end share (default 100)")
    p.add_argument("--over", metavar="DURATION", help="--ramp: how long, e.g. 30m (record time)")
    p.add_argument(
        "--start-ts", type=int, metavar="MS", help="--ramp: record time it starts at (default: now)"
    )
    p.add_argument(
        "--shadow",
        action="append",
        default=[],
        metavar="VERSION[:P]",
        help="also score with this version (on P %% of records, default 100) without serving; repeatable",
    )
    p.add_argument("--retain", type=int, help="earlier versions kept loaded for a rollback")
    p.add_argument(
        "--gate",
        type=int,
        default=0,
        metavar="N",
        help="the candidate takes traffic only after scoring N records in shadow without an error",
    )
    p.add_argument(
        "--force", action="store_true", help="publish even if the job has not reported the versions"
    )

    p = command("rollback", _rollback, "serve every record with the version before the candidate, at once")
    p.add_argument("data_type", metavar="DATA_TYPE")
    p = command("promote", _promote, "serve every record with the candidate (or VERSION), at once")
    p.add_argument("data_type", metavar="DATA_TYPE")
    p.add_argument("version", nargs="?", default="", metavar="VERSION")
    p = command(
        "policy",
        _policy,
        "show a data type's rollout policy and its versions' shares, as the job last reported",
    )
    p.add_argument("action", choices=["show"])
    p.add_argument("data_type", metavar="DATA_TYPE")
    p.add_argument("--json", action="store_true", help="the policy and versions as JSON")

    p = command(
        "stats",
        _stats,
        "per-data-type scoring stats: `stats serve` runs the HTTP query service, `stats [DATA_TYPE]` prints "
        "a table (from the service with --url, else straight from the stats topic)",
    )
    p.add_argument("data_type", nargs="?", metavar="DATA_TYPE|serve", help="a data type, or `serve`")
    p.add_argument("--port", type=int, help="serve: the HTTP port (default: the stats_port setting, 8090)")
    p.add_argument("--host", default="127.0.0.1", help="serve: the address to listen on (default: 127.0.0.1)")
    p.add_argument("--url", help="read from a running stats service, e.g. http://127.0.0.1:8090")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")

    p = command("models", _models, "list the models published on the models topic, marking the one serving")
    p.add_argument("--data-type", help="only this data type")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = command("demo", _demo, "start Kafka and the job, stream wine records, swap models while scores flow")
    p.add_argument("--rate", type=float, default=200.0, help="records per second (default: 200)")
    p.add_argument("--swap-every", type=float, default=20.0, help="seconds between model swaps (default: 20)")
    p.add_argument("--print-every", type=int, default=500, help="print a line every N scores (default: 500)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        logs.configure(settings.log_format, settings.log_level)
        result: int = args.handler(args, settings)
        return result
    except (
        local_kafka.BrokerError,
        local_cluster.ClusterError,
        topics.KafkaUnavailable,
        publish.PublishError,
        FlinkRestError,
        FileNotFoundError,
        ValueError,
    ) as e:
        print(f"modelstream: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
