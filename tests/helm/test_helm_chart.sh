#!/usr/bin/env bash
# Renders the chart with default and EMF values, checks every manifest
# structurally (helm-render -validate) and that the expected objects exist with
# the settings each mode needs; then proves the validator rejects a broken chart.
set -euo pipefail
render="$1" chart="$2" out="$3"
mkdir -p "$out"
fails=0
check() { # description, command...
  local what="$1"; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
has() { grep -q -- "$2" "$1"; }
count_kind() { "$render" -chart "$chart" "${@:3}" -validate | awk -v k="$1" '$1 == k {print $2}' | grep -qx "$2"; }

for mode in default emf; do
  args=()
  [ "$mode" = emf ] && args=(-f "$chart/values-emf.yaml")
  check "$mode: renders and validates" "$render" -chart "$chart" "${args[@]}" -validate
  "$render" -chart "$chart" "${args[@]}" -out "$out/$mode"
  m="$out/$mode/manifests.yaml"
  for obj in "kind: Deployment" "name: dmt-dmt-cira" "name: dmt-dmt-bridge" "name: dmt-dmt-rps" \
             "kind: StatefulSet" "kind: IngressRouteTCP" "passthrough: true" "kind: IngressRoute" \
             "helm.sh/hook: pre-install,pre-upgrade" "kind: PodDisruptionBudget" "kind: NetworkPolicy" \
             "traffic.sidecar.istio.io/excludeInboundPorts" "readOnlyRootFilesystem: true" \
             "runAsNonRoot: true" "port: 3000" "port: 8081" "port: 4433" "port: 8080"; do
    check "$mode: has $obj" has "$m" "$obj"
  done
done
check "default: 3 Deployments" count_kind Deployment 3
check "default: 3 PodDisruptionBudgets" count_kind PodDisruptionBudget 3
check "default: embedded secrets key mounted" has "$out/default/manifests.yaml" "DMT_SECRETS_KEY_FILE"
check "default: DMT-standalone bridge" has "$out/default/manifests.yaml" 'value: "standalone"'
check "emf: Vault back end" has "$out/emf/manifests.yaml" "DMT_VAULT_ADDRESS"
check "emf: Keycloak JWKS" has "$out/emf/manifests.yaml" "DMT_JWT_JWKS_URL"
check "emf: 3 terminator replicas" has "$out/emf/manifests.yaml" "replicas: 3"

# The validator must be able to fail.
bad="$out/bad-values.yaml"
printf 'containerSecurityContext:\n  readOnlyRootFilesystem: false\n  allowPrivilegeEscalation: true\n' >"$bad"
check "validator rejects a writable root filesystem" bash -c "! '$render' -chart '$chart' -f '$bad' -validate >/dev/null 2>&1"
printf 'bridge:\n  authMode: emf\n' >"$bad"
check "emf mode without a Keycloak issuer is refused" bash -c "! '$render' -chart '$chart' -f '$bad' >/dev/null 2>&1"

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
