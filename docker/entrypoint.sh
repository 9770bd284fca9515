#!/usr/bin/env bash
# jobmanager | taskmanager: run that Flink process in the foreground; anything else: a modelstream command.
set -euo pipefail
FLINK_HOME="$(python -c 'import os, pyflink; print(os.path.dirname(pyflink.__file__))')"
export FLINK_HOME FLINK_CONF_DIR=/opt/flink-conf
mkdir -p "$FLINK_CONF_DIR" "$MODELSTREAM_HOME"
cp "$FLINK_HOME"/conf/log4j*.properties "$FLINK_CONF_DIR"/
python - <<'PY'
import os, sys, yaml
config = yaml.safe_load(open(os.path.join(os.environ["FLINK_HOME"], "conf", "config.yaml")))
config.update(yaml.safe_load(open("/opt/modelstream/docker/flink-conf.yaml")))
config["python"] = {"executable": sys.executable}
yaml.safe_dump(config, open(os.path.join(os.environ["FLINK_CONF_DIR"], "config.yaml"), "w"))
PY
case "${1:-}" in
  jobmanager) exec "$FLINK_HOME/bin/jobmanager.sh" start-foreground ;;
  taskmanager) exec "$FLINK_HOME/bin/taskmanager.sh" start-foreground ;;
  *) exec modelstream "$@" ;;
esac
