#!/usr/bin/env bash
# Validates every Kubernetes manifest in k8s/ offline, strictly (unknown
# fields are errors), against the schemas the Python registry's
# kubernetes-validate carries; and the HAProxy recipe with haproxy itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_pip kubernetes-validate kubernetes-validate==1.37.0
ensure_haproxy
kubernetes-validate --strict k8s/*.yaml
haproxy -c -f scale/haproxy.cfg
