#!/bin/sh
# Renders a gateway configuration template, then runs Envoy on it: every {{NAME}} placeholder
# is replaced by the environment variable NAME (docker-compose sets them). A placeholder without
# a variable is an error. With RENDER_ONLY=1 it prints the rendered configuration instead of
# running Envoy (the tests compare it with the Rust harness's rendering of the same file).
#
# usage: run-envoy.sh TEMPLATE [ENVOY ARGS...]
set -eu

template=${1:?usage: run-envoy.sh TEMPLATE [ENVOY ARGS...]}
shift
rendered=$(cat "$template")
for placeholder in $(grep -o '{{ *[A-Z_][A-Z0-9_]* *}}' "$template" | sort -u | tr -d '{} '); do
    if ! value=$(printenv "$placeholder"); then
        echo "run-envoy.sh: $template needs the environment variable $placeholder" >&2
        exit 1
    fi
    # Escape what sed's replacement treats specially: \, & and the | delimiter.
    escaped=$(printf '%s' "$value" | sed -e 's/[\\&|]/\\&/g')
    rendered=$(printf '%s\n' "$rendered" | sed -e "s|{{ *$placeholder *}}|$escaped|g")
done

if [ "${RENDER_ONLY:-0}" = 1 ]; then
    printf '%s\n' "$rendered"
    exit 0
fi
config=$(mktemp /tmp/envoy-XXXXXX.yaml)
printf '%s\n' "$rendered" > "$config"
exec envoy --config-path "$config" "$@"
