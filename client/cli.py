"""`modelstream`: one command for the local stack, the job, publishing and reading.

Every setting (bootstrap servers, topic names, ports, intervals, ...) is a flag, before or after the
command, and an environment variable MODELSTREAM_<NAME>; both feed modelstream.settings.Settings
(`modelstream settings` lists them). Expected failures print what went wrong and what to do, with the
exit codes of client.errors.ExitCode; --debug adds the traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import shutil
import signal
import sys
import time
import traceback
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client import (
    catalog,
    demo,
    doctor,
    encode,
    errors,
    job_control,
    lag,
    local_cluster,
    local_kafka,
    messages,
    progress,
    publish,
    rollout,
    stats_service,
    topics,
)
from client.errors import CliError, ExitCode
from client.flink_rest import FlinkRest, FlinkRestError
from client.reference import reference_profile
from modelstream import logs, signing
from modelstream.admission import admit
from modelstream.codecs.protobuf import UserSchemas
from modelstream.drift import ProfileError
from modelstream.logs import masked
from modelstream.settings import ENV_PREFIX, Settings
from protobufs.modelstream_pb2 import (
    DeadLetter,
    ModelDescriptor,
    PerformancePolicy,
    RolloutPolicy,
    ScoreResult,
)

Handler = Callable[[argparse.Namespace, Settings], int]


class _HelpFormatter(argparse.HelpFormatter):
    """Help at least 100 columns wide, with each command's summary on the command's own line."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=28, width=max(100, shutil.get_terminal_size().columns))

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS and isinstance(action, argparse._SubParsersAction):
            # argparse measures the commands one indent shallower than it prints them
            longest = max(len(name) for name in action.choices) + self._current_indent
            self._action_max_length = max(self._action_max_length, longest + 2 * self._indent_increment)


class _Parser(argparse.ArgumentParser):
    """argparse with a two-line error: what is wrong, and where the help is; wide help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: {message}\n  see `{self.prog} --help`\n")


def _add_settings_flags(parser: argparse.ArgumentParser, top_level: bool) -> None:
    """Every setting as a --flag (hidden from --help: `modelstream settings` lists them). Under a
    command, an unset flag leaves the value given before the command alone."""
    unset: dict[str, Any] = {} if top_level else {"default": argparse.SUPPRESS}
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":  # --require-signed-models, --no-require-signed-models
            kind: dict[str, Any] = {"action": argparse.BooleanOptionalAction}
        else:
            kind = {"type": int if f.type == "int" else str, "metavar": f.name.upper()}
        parser.add_argument(flag, dest=f"setting_{f.name}", help=argparse.SUPPRESS, **kind, **unset)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of a failure" if top_level else argparse.SUPPRESS,
        **unset,
    )


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {f.name: getattr(args, f"setting_{f.name}", None) for f in fields(Settings)}
    settings = Settings.from_env().replace(**overrides)
    # absolute: the job runs in the project's directory, not the caller's
    keys = ",".join(str(Path(p).absolute()) for p in signing.key_paths(settings.trusted_keys))
    return settings.replace(trusted_keys=keys)


# -- handlers --------------------------------------------------------------------------------------


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "start" and local_kafka.running_pid(settings) is None:
        errors.require_free_port(settings.kafka_port, "the Kafka broker", "--kafka-port")
        errors.require_free_port(settings.kafka_controller_port, "its controller", "--kafka-controller-port")
    if args.action == "start" and args.foreground:
        return local_kafka.run_foreground(settings, secure=args.secure)
    if args.action == "start":
        pid = local_kafka.start(settings, secure=args.secure)
        print(f"kafka running on {settings.bootstrap} (pid {pid}, data in {settings.kafka_data_dir})")
        security = local_kafka.local_security(settings)
        if security.exists:
            print("SASL_SSL only: give every client --kafka-properties (MODELSTREAM_KAFKA_PROPERTIES) =")
            print(security.client_properties)
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
        rest.call("/overview")  # a FlinkRestError when nothing answers, rather than "no job"
        job = rest.running_job()
        if job is None:
            raise CliError(
                f"no modelstream job runs at {settings.jobmanager}",
                "start one with `modelstream job run` (embedded) or `modelstream job submit`",
                ExitCode.FAILED,
            )
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
    errors.require_free_port(settings.rest_port, "the embedded job's REST API", "--jobmanager 127.0.0.1:PORT")
    return job_control.run_embedded(settings)


def _job_status(args: argparse.Namespace, settings: Settings) -> int:
    """0: the job runs (with a checkpoint younger than --max-checkpoint-age, if given); 1: it does not;
    3 (through main): no Flink REST API answers."""
    try:
        state = job_control.status(settings)
    except FlinkRestError as e:
        if args.json:
            print(json.dumps({"running": False, "error": str(e)}))
        raise
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
    if args.sign_with and args.location:
        raise CliError(
            "--sign-with cannot sign a model published by --location: its bytes are not in the message",
            "publish the model's file instead (publish-model FILE --sign-with KEY)",
        )
    key = _signing_key(args.sign_with)  # a bad key file is found before the model is checked
    descriptor = messages.model_descriptor(
        path, name, args.data_type, model_type, args.description, args.version, args.location or "",
        args.input_name, args.output_name, args.signature, _input_fields(args.input_fields),
    )  # fmt: skip
    descriptor.staged = args.stage
    if args.quality is not None:
        descriptor.quality = args.quality
    if not args.no_check:
        _check_model(settings, descriptor)
    profiled = _reference(settings, descriptor, args.reference)
    signed = _sign(descriptor, key)  # after the check: what is signed is what was checked
    publish.publish_model(settings, descriptor)
    carried = f"{len(descriptor.data)} bytes" if not args.location else f"location {args.location}"
    staged = ": staged, serving when a rollout routes to it" if args.stage else ""
    print(f"published {model_type} model {name!r} ({carried}) for data type {descriptor.dataType!r} "
          f"to {settings.models_topic}{signed}{profiled}{staged}")  # fmt: skip
    return 0


def _reference(settings: Settings, descriptor: ModelDescriptor, path: str | None) -> str:
    """Profile --reference FILE into the descriptor (before it is signed); the words that say so."""
    if not path:
        return ""
    try:
        profile = reference_profile(settings, descriptor, Path(path))
    except (ProfileError, ValueError, FileNotFoundError) as e:
        raise CliError(
            f"--reference {path}: {e}",
            "give a sample of the model's training data: a CSV with a header row or JSONL, one record a "
            "line, with the fields the model's inputs bind to",
        ) from e
    descriptor.reference_profile.CopyFrom(profile)
    return f", reference profile of {profile.records} records ({len(profile.features)} features)"


def _signing_key(path: str | None) -> Ed25519PrivateKey | None:
    """The private key of --sign-with (None without it); a CliError for a file that does not load."""
    if not path:
        return None
    try:
        return signing.load_private_key(path)
    except signing.KeyFileError as e:
        raise CliError(
            str(e), "give the private.pem that `modelstream keys generate --out DIR` wrote", ExitCode.USAGE
        ) from e


def _sign(message: signing.Signable, key: Ed25519PrivateKey | None) -> str:
    """Sign ``message`` with ``key``, if one is given; the words that say so in the CLI's output."""
    if key is None:
        return ""
    return f", signed by key {signing.sign(message, key)}"


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    try:
        pair = signing.generate_key_pair(args.out)
    except FileExistsError as e:
        raise CliError(
            f"{e.filename} exists: a key is never overwritten",
            "choose another --out directory (or move the old key pair away first)",
        ) from e
    print(f"private key: {pair.private_path.resolve()}")
    print(f"public key: {pair.public_path.resolve()}")
    print(f"key id: {pair.key_id}")
    return 0


def _check_model(settings: Settings, descriptor: ModelDescriptor) -> None:
    """ModelRejected, with the job's reason, for a model the job would not let serve: built by the
    job's runtime code, bound to the data type's records (its published schema, else the wine record,
    else the model's declared inputs) and scored on a probe."""
    schemas = UserSchemas(catalog.record_schemas(settings, descriptor.dataType))
    model, _ = admit(descriptor, settings.model_options(), descriptor.dataType, None, schemas)
    model.close()


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
        total = args.count if args.count is not None else len(encode.read_wine_rows(path))
        with progress.progress("publish-data", total, args.quiet) as report:
            sent = publish.publish_records(
                settings.replace(data_topic=topic), path, args.data_type, args.count, args.rate,
                args.id_prefix, progress=report,
            )  # fmt: skip
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
    with progress.progress("publish-data", args.count or len(rows), args.quiet) as report:
        sent = publish.publish_encoded(settings, topic, records, args.rate, progress=report)
    what = {"json": "JSON objects", "oip": "OIP ModelInferRequest rows", "protobuf": "protobuf records"}
    print(f"published {sent} {what[encoding]} of data type {args.data_type!r} to {topic}")
    return 0


def _publish_schema(args: argparse.Namespace, settings: Settings) -> int:
    file_descriptor_set = encode.read_descriptor_set(Path(args.file))
    UserSchemas({args.message: file_descriptor_set})  # the job's own check: SchemaError if it would not
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
    if s.members:
        routed += f" of {','.join(s.members)}"
    if s.speculation:
        routed += f" ({ScoreResult.Speculation.Name(s.speculation).lower().replace('_', ' ')})"
    return (
        f"{s.record_id or '-':>14}  {s.data_type}  score={score:<8} model={s.model_name} "
        f"version={s.model_version}  {s.scoring_time_ns / 1000:.0f}us{routed}"
    )


def _rollout(args: argparse.Namespace, settings: Settings) -> int:
    key = _signing_key(args.sign_with)
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
        ensemble=args.ensemble,
        members=args.members,
        member_results=args.member_results,
        speculative=args.speculative,
        fallback=args.fallback,
        deadline_ms=args.deadline_ms,
    )
    snapshot = catalog.latest_stats(settings).get(args.data_type)
    if snapshot is not None and not args.force:
        unknown = rollout.unknown_versions(policy, snapshot)
        if unknown:
            loaded = ", ".join(rollout.loaded_versions(snapshot)) or "none"
            print(f"modelstream: the job has not reported {', '.join(unknown)} loaded for {args.data_type!r} "
                  f"(loaded: {loaded}); publish it first (publish-model --stage) or pass --force",
                  file=sys.stderr)  # fmt: skip
            return ExitCode.REJECTED
    return _publish_policy(settings, policy, key)


def _publish_policy(settings: Settings, policy: RolloutPolicy, key: Ed25519PrivateKey | None) -> int:
    signed = _sign(policy, key)
    publish.publish_policy(settings, policy)
    print(rollout.describe(policy) + signed)
    print(f"published to {settings.models_topic}; a policy the job cannot apply goes to "
          f"{settings.dead_letters_topic} with its reason, and the current one keeps serving")  # fmt: skip
    return 0


def _best_of(args: argparse.Namespace, settings: Settings) -> int:
    key = _signing_key(args.sign_with)
    candidates = _input_fields(args.versions)
    if len(candidates) < 2:
        raise ValueError("best-of compares at least two versions: VERSION,VERSION[,...]")
    policy = PerformancePolicy(
        data_type=args.data_type, version=rollout.policy_version(), candidates=candidates,
        min_labelled=args.min_labelled, keep_top=args.keep_top,
    )  # fmt: skip
    if args.retain is not None:
        policy.retain = args.retain
    signed = _sign(policy, key)
    publish.publish_performance_policy(settings, policy)
    keep = f"; then only the best {args.keep_top} stay loaded" if args.keep_top else ""
    others = ", ".join(candidates[1:])
    print(f"{args.data_type}: {candidates[0]} serves and {others} shadow every record until "
          f"two have {args.min_labelled} results labelled by feedback; then the best serves, the others "
          f"shadow{keep}{signed}")  # fmt: skip
    print(f"published to {settings.models_topic}; a policy the job cannot apply goes to "
          f"{settings.dead_letters_topic} with its reason")  # fmt: skip
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    key = _signing_key(args.sign_with)
    return _publish_policy(settings, rollout.action_policy(args.data_type, RolloutPolicy.ROLLBACK), key)


def _promote(args: argparse.Namespace, settings: Settings) -> int:
    key = _signing_key(args.sign_with)
    policy = rollout.action_policy(args.data_type, RolloutPolicy.PROMOTE, args.version)
    return _publish_policy(settings, policy, key)


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


def _serve_stats(args: argparse.Namespace, settings: Settings) -> int:
    """`stats serve` and `console`: the stats service, its console page at /, until SIGINT or SIGTERM."""
    port = settings.stats_port if args.port is None else args.port
    errors.require_free_port(port, "the stats service", "--port", args.host)
    server = stats_service.serve(settings, host=args.host, port=port)
    port = server.server_address[1]
    print(f"console: http://{args.host}:{port}/", flush=True)
    print("JSON: /models, /stats/<data type>, /lag, /api/console, /healthz, /readyz", flush=True)

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


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    if args.data_type == "serve":
        return _serve_stats(args, settings)
    rows = _stats_rows(args, settings)
    if rows is None:
        return 1
    if args.json:
        print(json.dumps(rows))
        return 0
    print(_stats_table(rows, history=bool(args.data_type)))
    try:
        behind = _get_json(f"{args.url.rstrip('/')}/lag")["lag"] if args.url else _total_lag(settings)
        print(
            f"consumer lag: {behind:,} records behind, the job's total over all data topics "
            "(as of its last checkpoint)"
        )
    except urllib.request.HTTPError as e:  # the service answered, saying why in its body (a 503)
        try:
            body = json.load(e)
        except ValueError:
            body = None
        why = (body.get("error") if isinstance(body, dict) else None) or e.reason
        print(f"consumer lag: unknown (the stats service answered {e.code}: {why})")
    except (OSError, topics.KafkaUnavailable) as e:
        print(f"consumer lag: unknown ({e})")
    return 0


def _stats_rows(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]] | None:
    """/stats/<data type> of the data type asked for (or all), from a stats service with --url, else
    straight from the stats topic; None (said on stderr) when there is none for it."""
    if args.url:
        base = args.url.rstrip("/")
        types = (
            [args.data_type]
            if args.data_type
            else [m["data_type"] for m in _get_json(base + "/models")["models"]]
        )
        return [_get_json(f"{base}/stats/{urllib.parse.quote(t)}") for t in types]
    latest = catalog.latest_stats(settings)
    if args.data_type and args.data_type not in latest:
        print(f"no stats for data type {args.data_type!r}", file=sys.stderr)
        return None
    chosen = [latest[args.data_type]] if args.data_type else list(latest.values())
    return [stats_service.stats_detail(s) for s in chosen]


def _drift(args: argparse.Namespace, settings: Settings) -> int:
    """Each data type's drift per loaded version, from the stats topic (or a stats service)."""
    rows = _stats_rows(args, settings)
    if rows is None:
        return 1
    if args.json:
        print(json.dumps([{"data_type": r.get("data_type", ""), "drift": r["drift"]} for r in rows]))
        return 0
    print(_drift_table(rows))
    return 0


def _drift_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'data type':<14} {'version':<16} {'status':<6} {'windows':>7} {'profile':<17} "
             f"{'accuracy':>8} {'rmse':>8}  PSI per feature (flagged *)"]  # fmt: skip
    for row in rows:
        for stats in row.get("versions") or [row.get("current", {})]:
            drift = stats.get("drift", {})
            flagged = set(drift.get("flagged", []))
            psi = ", ".join(
                f"{name}{'*' if name in flagged else ''} {value:.3f}"
                for name, value in sorted(drift.get("psi", {}).items(), key=lambda item: -item[1])
            )
            source = "warming up" if drift.get("warming_up") else str(drift.get("profile_source", "")).lower()
            accuracy = "" if stats.get("accuracy") is None else f"{stats['accuracy']:.3f}"
            rmse = "" if stats.get("rmse") is None else f"{stats['rmse']:.3f}"
            lines.append(
                f"{row.get('data_type', ''):<14} {stats.get('model', {}).get('version', ''):<16} "
                f"{drift.get('status', 'OK'):<6} {int(drift.get('windows', 0)):>7} {source:<17} "
                f"{accuracy:>8} {rmse:>8}  {psi}"
            )
    return "\n".join(lines)


def _total_lag(settings: Settings) -> int:
    """The job's lag summed over every partition of all its data topics."""
    return sum(p["lag"] for p in lag.consumer_lag(settings))


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


def _lag(args: argparse.Namespace, settings: Settings) -> int:
    partitions = lag.consumer_lag(settings)
    total = sum(p["lag"] for p in partitions)
    if args.json:
        print(json.dumps({"lag": total, "partitions": partitions}))
        return 0
    print(f"{'topic':<24} {'partition':>9} {'end':>12} {'committed':>12} {'lag':>10}")
    for p in partitions:
        committed = "-" if p["committed"] is None else str(p["committed"])
        print(f"{p['topic']:<24} {p['partition']:>9} {p['end']:>12} {committed:>12} {p['lag']:>10}")
    print(f"{settings.group_id}: {total:,} records behind (as of the job's last checkpoint)")
    return 0


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


def _settings_command(args: argparse.Namespace, settings: Settings) -> int:
    defaults, shown = Settings(), settings.shown()
    rows = []
    for f in fields(Settings):
        env = ENV_PREFIX + f.name.upper()
        given = getattr(args, f"setting_{f.name}", None) is not None
        rows.append(
            {
                "name": f.name,
                "flag": "--" + f.name.replace("_", "-"),
                "env": env,
                "default": masked(f.name, getattr(defaults, f.name)),
                "value": shown[f.name],
                "source": "flag" if given else "env" if env in os.environ else "default",
                "help": f.metadata.get("help", ""),
            }
        )
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        where = f"{row['source']}; default {row['default']!s}"
        print(f"{row['flag']}  ({row['env']})  = {row['value']!s}  [{where}]")
        print(f"    {row['help']}")
    return 0


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    s = settings
    where = doctor.Surroundings(
        s.bootstrap, s.jobmanager, s.home, s.kafka_port, s.kafka_controller_port, s.rest_port,
        s.stats_port, s.jars_dir,
    )  # fmt: skip
    return doctor.run(where, as_json=args.json)


# -- parser ----------------------------------------------------------------------------------------


def _add_sign_with(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--sign-with",
        metavar="PRIVATE_KEY_FILE",
        help=f"sign the {what} with this Ed25519 private key (the private.pem of `modelstream keys "
        "generate`), for a job with --require-signed-models",
    )


def _add_listen_flags(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--port and --host of the stats service (`stats serve`, `console`)."""
    p.add_argument("--port", type=int, help=f"{prefix}the HTTP port (default: the stats_port setting, 8090)")
    listen = f"{prefix}the address to listen on (default: 127.0.0.1)"
    p.add_argument("--host", default="127.0.0.1", help=listen)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="modelstream",
        usage="modelstream [--debug] [SETTING FLAGS] COMMAND [ARGS]",
        description="Real-time model serving in Apache Flink: models are messages on a Kafka topic, "
        "hot-swapped per data type while records are scored.",
        epilog="Every command also takes the setting flags (--bootstrap, --jobmanager, --home, ...), before "
        "or after it, and reads MODELSTREAM_<NAME> variables: `modelstream settings` lists them with "
        "their values. `modelstream COMMAND --help` shows a command's own flags. Exit codes: 0 ok, 1 "
        "failed or not running, 2 usage, 3 unreachable, 4 rejected, 5 port in use. Quick start: "
        "`modelstream demo`; set-up check: `modelstream doctor`.",
    )
    _add_settings_flags(parser, top_level=True)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands", prog="modelstream"
    )

    def command(
        name: str, handler: Handler, summary: str, details: str = "", kafka: bool = False
    ) -> argparse.ArgumentParser:
        """A subcommand: ``summary`` is its line in `modelstream --help`; ``kafka``: it needs a broker."""
        p = sub.add_parser(
            name,
            help=summary,
            description=f"{summary}. {details}".strip(),
            epilog="Setting flags (see `modelstream settings`) are accepted too.",
            conflict_handler="resolve",  # a command's own flag of a setting's name wins
        )
        _add_settings_flags(p, top_level=False)
        p.set_defaults(handler=handler, needs_broker=kafka)
        return p

    p = command(
        "kafka",
        _kafka,
        "start, stop or check the local Kafka broker",
        "A single-node KRaft broker on 127.0.0.1 from the pinned jars; `start` creates the topics.",
    )
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument(
        "--foreground",
        action="store_true",
        help="start: run until SIGTERM or SIGINT (a supervisor's way), then stop the broker",
    )
    p.add_argument(
        "--secure",
        action="store_true",
        help="start: a SASL_SSL listener (SCRAM users, a CA of its own); prints the client properties file",
    )

    p = command(
        "job",
        _job,
        "run, submit, check, savepoint, stop or resume the scoring job",
        "Embedded (a local Flink mini-cluster in this process's child) or on a cluster (--jobmanager).",
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

    p = command(
        "cluster",
        _cluster,
        "start, stop or check a local standalone Flink cluster",
        "JobManager and TaskManagers on 127.0.0.1 from the pip-installed Flink.",
    )
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--taskmanagers", type=int, default=2, help="start: how many TaskManagers (default: 2)")
    p.add_argument("--slots", type=int, default=2, help="start: task slots per TaskManager (default: 2)")
    p.add_argument("--json", action="store_true", help="status: the REST overview as JSON")

    p = command(
        "publish-model",
        _publish_model,
        "check a model file and publish it on the models topic",
        "The model is loaded with the job's own runtime code and scores a probe record first; what the "
        "job would reject is refused here with the job's reason (exit 4), unless --no-check.",
        kafka=True,
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
        "--quality",
        type=float,
        help="a quality figure of the model, higher is better (what a best-quality ensemble compares)",
    )
    p.add_argument(
        "--no-check",
        action="store_true",
        help="publish without loading the model and scoring a probe record first",
    )
    _add_sign_with(p, "model")
    p.add_argument(
        "--reference",
        metavar="FILE",
        help="a sample of training data (CSV with a header, or JSONL): its profile per input feature and "
        "of the predictions ships with the model, and the job measures drift against it (docs/drift.md)",
    )

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
        "replay a file as records on a data topic",
        "The wine CSV as WineRecords; a .jsonl or a .csv with a header row as JSON objects, OIP "
        "ModelInferRequests or protobuf messages of your own schema. Shows progress on stderr.",
        kafka=True,
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
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")

    p = command(
        "publish-schema",
        _publish_schema,
        "check and publish the protobuf schema of a data type's records",
        "A RecordSchema on the models topic; the message must be in the descriptor set.",
        kafka=True,
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
        ("dead-letters", _dead_letters, "print rejected records, models and policies with reasons"),
    ):
        p = command(name, handler, what, kafka=True)
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
        "route a data type's records among its versions: canary, A/B, ramp, shadow",
        "Publish the candidate first, with publish-model --stage.",
        kafka=True,
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
        "--ensemble",
        choices=sorted(rollout.ENSEMBLE_METHODS),
        help="serve one result combined from --members: vote (classifiers), mean (weighted: V=W), "
        "max-confidence, best-quality (the member with the highest published --quality)",
    )
    p.add_argument("--members", metavar="V1,V2,...", help="--ensemble: its member versions, in order")
    p.add_argument(
        "--member-results",
        action="store_true",
        help="--ensemble: also write each member's own result to shadow-scores (role member)",
    )
    p.add_argument(
        "--speculative",
        metavar="PRIMARY",
        help="serve PRIMARY when it answers a micro-batch within --deadline-ms, else --fallback",
    )
    p.add_argument("--fallback", metavar="VERSION", help="--speculative: the fast version")
    p.add_argument(
        "--deadline-ms",
        type=int,
        metavar="D",
        help="--speculative: the primary's deadline per micro-batch (default: speculative_deadline_ms)",
    )
    p.add_argument(
        "--force", action="store_true", help="publish even if the job has not reported the versions"
    )
    _add_sign_with(p, "policy")

    p = command("rollback", _rollback, "serve every record with the version before the candidate", kafka=True)
    p.add_argument("data_type", metavar="DATA_TYPE")
    _add_sign_with(p, "policy")
    p = command("promote", _promote, "serve every record with the candidate (or VERSION)", kafka=True)
    p.add_argument("data_type", metavar="DATA_TYPE")
    p.add_argument("version", nargs="?", default="", metavar="VERSION")
    _add_sign_with(p, "policy")
    p = command(
        "policy",
        _policy,
        "show a data type's rollout policy and its versions' shares",
        "As the job last reported them on the stats topic.",
        kafka=True,
    )
    p.add_argument("action", choices=["show"])
    p.add_argument("data_type", metavar="DATA_TYPE")
    p.add_argument("--json", action="store_true", help="the policy and versions as JSON")

    p = command(
        "best-of",
        _best_of,
        "serve the version that performs best on live feedback",
        "The first version serves and the others shadow until two have --min-labelled results matched "
        "with feedback (docs/drift.md); then the best (accuracy; regressions: lowest RMSE) serves.",
        kafka=True,
    )
    p.add_argument("data_type", metavar="DATA_TYPE")
    p.add_argument("versions", metavar="V1,V2[,...]", help="loaded versions to compare, the first serving")
    p.add_argument(
        "--min-labelled", type=int, default=500, help="labelled results before a version is ranked"
    )
    p.add_argument("--keep-top", type=int, default=0, help="once ranked, keep only the N best loaded")
    p.add_argument("--retain", type=int, help="versions that are not candidates kept loaded")
    _add_sign_with(p, "policy")

    p = command(
        "drift",
        _drift,
        "print each version's drift (status, PSI per feature) and live quality",
        "The status (OK, WARN, DRIFT) and each input feature's PSI of the last complete window, against "
        "the version's reference profile (publish-model --reference), and its live accuracy or RMSE from "
        "feedback (docs/drift.md). From the stats topic, or a stats service with --url.",
    )
    p.add_argument("data_type", nargs="?", metavar="DATA_TYPE", help="a data type (default: all)")
    p.add_argument("--url", help="read from a running stats service, e.g. http://127.0.0.1:8090")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")

    p = command(
        "stats",
        _stats,
        "print scoring stats per data type, or serve them over HTTP",
        "`stats serve` runs the HTTP query service; `stats [DATA_TYPE]` prints a table (from the "
        "service with --url, else straight from the stats topic).",
    )
    p.add_argument("data_type", nargs="?", metavar="DATA_TYPE|serve", help="a data type, or `serve`")
    _add_listen_flags(p, "serve: ")
    p.add_argument("--url", help="read from a running stats service, e.g. http://127.0.0.1:8090")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")

    p = command(
        "console",
        _serve_stats,
        "serve the live console page (and the stats service's JSON)",
        "Prints the page's URL. The same server as `stats serve`.",
    )
    _add_listen_flags(p)

    p = command(
        "lag",
        _lag,
        "the job's consumer lag per data topic partition",
        "Records past the offset the job committed at its last checkpoint (the group_id setting).",
        kafka=True,
    )
    p.add_argument("--json", action="store_true", help="one JSON object")

    p = command("models", _models, "list the published models, marking the ones serving", kafka=True)
    p.add_argument("--data-type", help="only this data type")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = command("demo", _demo, "start Kafka and the job, stream wine records, swap models while scores flow")
    p.add_argument("--rate", type=float, default=200.0, help="records per second (default: 200)")
    p.add_argument("--swap-every", type=float, default=20.0, help="seconds between model swaps (default: 20)")
    p.add_argument("--print-every", type=int, default=500, help="print a line every N scores (default: 500)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")

    p = command(
        "keys",
        _keys,
        "make a key pair for signing models and policies",
        "`keys generate --out DIR` writes DIR/private.pem (Ed25519, PKCS8, mode 0600: for publish-model "
        "--sign-with) and DIR/public.pem (for the job's --trusted-keys), and prints their paths and the "
        "key id. See docs/security.md.",
    )
    p.add_argument("action", choices=["generate"])
    p.add_argument(
        "--out", required=True, metavar="DIR", help="the directory for the two files (made if missing)"
    )

    p = command(
        "settings",
        _settings_command,
        "list every setting: flag, env variable, default, value and its source",
        "Secrets are masked.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per setting, in a list")

    command(
        "doctor",
        _doctor,
        "check the set-up and what a run needs, with the fix for each failure",
        "Python, the JDK, the venv, the pinned jars, free ports, the broker, the Flink REST API, disk "
        "space. Also runs before set-up as `python3 -m client.doctor`. Exit 1 when something blocks a run.",
    ).add_argument("--json", action="store_true", help="the checks as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(args.debug) or os.environ.get(ENV_PREFIX + "DEBUG", "") not in ("", "0", "false")
    topics.CLIENT_LOG.setLevel(logging.DEBUG if debug else logging.CRITICAL)
    settings = Settings()
    try:
        settings = _settings(args)
        logs.configure(settings.log_format, settings.log_level)
        for name in ("file", "schema", "sign_with"):  # what the user named is there before anything connects
            given = getattr(args, name, None)
            if given and not Path(given).exists():
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", given)
        if args.needs_broker:
            topics.require_broker(settings)
        result: int = args.handler(args, settings)
        return result
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as e:
        problem = errors.explain(e, settings)
        if problem is None:
            raise
        if debug:
            traceback.print_exc()
        print(f"modelstream: {problem.message}", file=sys.stderr)
        if problem.fix:
            print(f"  {problem.fix}", file=sys.stderr)
        return problem.code


if __name__ == "__main__":
    sys.exit(main())
