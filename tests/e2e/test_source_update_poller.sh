#!/usr/bin/env bash
# cdi-source-update-poller (cmd/vimport/source_update_poller.c) against a real registry
# (Debian's docker-registry, tests/e2e/registry-fixture.sh, images pushed by skopeo) and
# a STAND-IN for the Kubernetes API: no API server can run here, so
# tests/e2e/kubeapi_standin.py plays the DataImportCron over HTTPS with its own test CA,
# and refuses a wrong bearer token, path, Content-Type or patch shape as the API does.
#   1. -h exits 0; a missing -cron exits 1; -kubeconfig and KUBECONFIG are refused
#   2. a cron without the digest annotation: the patch is CDI's two "add" operations,
#      byte for byte, and the digest is the sha256 of the manifest the tag names
#      (skopeo inspect --raw | sha256sum); lastCronTime is RFC 3339, now
#   3. the same digest again: only lastCronTime is patched
#   4. a multi-arch image: the digest is the index's, as CDI's GetManifest(nil) gives
#   5. basic auth (IMPORTER_ACCESS_KEY_ID / IMPORTER_SECRET_KEY) on the basic registry;
#      INSECURE_TLS=true on a plain-http registry
#   6. a wrong token: exit 1 naming HTTP 401, the token in no output; a registry whose CA
#      is not given (no -certdir): exit 1 before any request to the API
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd openssl python3 skopeo sha256sum
tmp=$(e2e_tmpdir)
registry_start anon basic http
registry_push anon
registry_push basic
registry_push http
ln -s "$VIMPORT" "$tmp/cdi-source-update-poller"
poller=$tmp/cdi-source-update-poller

# ---- the stand-in API server and its service account --------------------------------------
sa=$tmp/serviceaccount
mkdir -p "$sa"
test_ca_make "$tmp/kapi" "stand-in kube CA" || fail "no test CA for the stand-in API server"
cp "$tmp/kapi/ca.pem" "$sa/ca.crt"
echo "stand-in-token-$RANDOM$RANDOM" >"$sa/token"
token=$(cat "$sa/token")
cat >"$tmp/cron.json" <<JSON
{"apiVersion":"cdi.kubevirt.io/v1beta1","kind":"DataImportCron",
 "metadata":{"name":"fedora","namespace":"golden","annotations":{"keep":"me"}},
 "spec":{"schedule":"* * * * *"}}
JSON
/usr/bin/python3 "$E2E_LIB_DIR/kubeapi_standin.py" --cert "$tmp/kapi/server.pem" --key "$tmp/kapi/server.key" \
  --token-file "$sa/token" --object "$tmp/cron.json" --ns golden --name fedora \
  --port-file "$tmp/kapi.port" --log "$tmp/kapi.log" >"$tmp/kapi.out" 2>&1 &
e2e_on_exit "kill $!"
for _ in $(seq 100); do [ -s "$tmp/kapi.port" ] && break; sleep 0.1; done
[ -s "$tmp/kapi.port" ] || fail "the stand-in API server did not start: $(cat "$tmp/kapi.out")"
kport=$(cat "$tmp/kapi.port")

# run_poller ARGS...: the poller as CDI's CronJob pod runs it (env -i: the pod's env only,
# plus the secret's variables in poller_env).
poller_env=()
run_poller() {
  set +e
  env -i PATH="$PATH" KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$kport" \
    VIMPORT_SERVICEACCOUNT_DIR="${SA_DIR:-$sa}" "${poller_env[@]}" \
    "$poller" "$@" >"$tmp/poller.out" 2>"$tmp/poller.err"
  RC=$?
  set -e
}
annotation() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["annotations"].get(sys.argv[2], ""))' \
    "$tmp/cron.json" "$1"
}
patches() { grep -c '"method": "PATCH"' "$tmp/kapi.log" 2>/dev/null || true; }
last_patch_body() {
  python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; print([x for x in l if x["method"]=="PATCH"][-1]["body"])' \
    "$tmp/kapi.log"
}
DIGEST_KEY=cdi.kubevirt.io/storage.import.sourceDesiredDigest
TIME_KEY=cdi.kubevirt.io/storage.import.lastCronTime

# ---- 1. the command line ----------------------------------------------------------------------
run_poller -h
assert_eq 0 "$RC" "-h"
run_poller -ns golden -url "docker://$REGISTRY_ANON/disk/gzip:v1"
assert_eq 1 "$RC" "no -cron"
grep -q "mandatory parameters are missing" "$tmp/poller.err" || fail "no -cron: $(cat "$tmp/poller.err")"
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_ANON/disk/gzip:v1" -kubeconfig /x
assert_eq 1 "$RC" "-kubeconfig"
poller_env=(KUBECONFIG=/x)
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_ANON/disk/gzip:v1"
poller_env=()
assert_eq 1 "$RC" "KUBECONFIG"
grep -q "KUBECONFIG are not supported" "$tmp/poller.err" || fail "KUBECONFIG: $(cat "$tmp/poller.err")"

# ---- 2. a new digest: both annotations, CDI's patch -------------------------------------------
want=sha256:$(skopeo inspect --raw --cert-dir "$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/disk/gzip:v1" | sha256sum | cut -d' ' -f1)
before=$(date -u +%s)
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_ANON/disk/gzip:v1" -certdir "$REGISTRY_CA_DIR"
assert_eq 0 "$RC" "the poller: $(cat "$tmp/poller.err")"
assert_eq "$want" "$(annotation $DIGEST_KEY)" "the desired digest"
assert_eq me "$(annotation keep)" "an annotation the patch does not name"
stamp=$(annotation $TIME_KEY)
[[ $stamp =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] || fail "lastCronTime '$stamp' is not RFC 3339"
t=$(date -u -d "$stamp" +%s)
if [ "$t" -lt $((before - 1)) ] || [ "$t" -gt $(($(date -u +%s) + 1)) ]; then
  fail "lastCronTime $stamp is not now"
fi
expected_body="[{\"op\":\"add\",\"path\":\"/metadata/annotations/cdi.kubevirt.io~1storage.import.lastCronTime\",\"value\":\"$stamp\"},{\"op\":\"add\",\"path\":\"/metadata/annotations/cdi.kubevirt.io~1storage.import.sourceDesiredDigest\",\"value\":\"$want\"}]"
assert_eq "$expected_body" "$(last_patch_body)" "the patch body"
grep -q "Digest is $want" "$tmp/poller.err" || fail "the log does not name the digest"

# ---- 3. the same digest: only lastCronTime ----------------------------------------------------
sleep 1
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_ANON/disk/gzip:v1" -certdir "$REGISTRY_CA_DIR"
assert_eq 0 "$RC" "the second poll: $(cat "$tmp/poller.err")"
body=$(last_patch_body)
[[ $body == '[{"op":"add","path":"/metadata/annotations/cdi.kubevirt.io~1storage.import.lastCronTime","value":"'*'"}]' ]] ||
  fail "an unchanged digest must patch lastCronTime only: $body"
grep -q "No digest update" "$tmp/poller.err" || fail "no 'No digest update' in the log"

# ---- 4. a multi-arch index: the index's digest ------------------------------------------------
want=sha256:$(skopeo inspect --raw --cert-dir "$REGISTRY_CA_DIR" "docker://$REGISTRY_ANON/disk/index:v1" | sha256sum | cut -d' ' -f1)
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_ANON/disk/index:v1" -certdir "$REGISTRY_CA_DIR"
assert_eq 0 "$RC" "the index: $(cat "$tmp/poller.err")"
assert_eq "$want" "$(annotation $DIGEST_KEY)" "the index's digest"

# ---- 5. basic auth from the secret's env --------------------------------------------------------
want=sha256:$(skopeo inspect --raw --cert-dir "$REGISTRY_CA_DIR" --creds "$REGISTRY_USER:$REGISTRY_PASS" "docker://$REGISTRY_BASIC/disk/zstd:v1" | sha256sum | cut -d' ' -f1)
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_BASIC/disk/zstd:v1" -certdir "$REGISTRY_CA_DIR"
assert_eq 1 "$RC" "basic registry without credentials"
poller_env=("IMPORTER_ACCESS_KEY_ID=$REGISTRY_USER" "IMPORTER_SECRET_KEY=$REGISTRY_PASS")
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_BASIC/disk/zstd:v1" -certdir "$REGISTRY_CA_DIR"
assert_eq 0 "$RC" "basic registry with credentials: $(cat "$tmp/poller.err")"
poller_env=()
assert_eq "$want" "$(annotation $DIGEST_KEY)" "the basic registry's digest"
! grep -qF "$REGISTRY_PASS" "$tmp/poller.err" "$tmp/poller.out" || fail "the registry password is in the output"

# ---- 5b. an insecure registry (CDIConfig's insecureRegistries: INSECURE_TLS, plain http) ----
want=sha256:$(skopeo inspect --raw --tls-verify=false "docker://$REGISTRY_HTTP/disk/gzip:v1" | sha256sum | cut -d' ' -f1)
poller_env=(INSECURE_TLS=true)
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_HTTP/disk/gzip:v1"
poller_env=()
assert_eq 0 "$RC" "an insecure registry: $(cat "$tmp/poller.err")"
assert_eq "$want" "$(annotation $DIGEST_KEY)" "the insecure registry's digest"
poller_env=(INSECURE_TLS=yes)
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_HTTP/disk/gzip:v1"
poller_env=()
assert_eq 1 "$RC" "INSECURE_TLS=yes (not a Go boolean)"

# ---- 6. refusals ------------------------------------------------------------------------------
mkdir -p "$tmp/wrong-sa"
cp "$sa/ca.crt" "$tmp/wrong-sa/ca.crt"
echo "wrong-token-$RANDOM" >"$tmp/wrong-sa/token"
n=$(patches)
SA_DIR=$tmp/wrong-sa run_poller -ns golden -cron fedora -url "docker://$REGISTRY_ANON/disk/gzip:v1" -certdir "$REGISTRY_CA_DIR"
assert_eq 1 "$RC" "a wrong token"
grep -q "HTTP 401" "$tmp/poller.err" || fail "a wrong token: $(cat "$tmp/poller.err")"
! grep -qF "$(cat "$tmp/wrong-sa/token")" "$tmp/poller.err" "$tmp/poller.out" || fail "the token is in the output"
! grep -qF "$token" "$tmp/poller.err" "$tmp/poller.out" || fail "the token is in the output"
assert_eq "$n" "$(patches)" "PATCH requests after a refused GET"
lines=$(wc -l <"$tmp/kapi.log")
run_poller -ns golden -cron fedora -url "docker://$REGISTRY_ANON/disk/gzip:v1"
assert_eq 1 "$RC" "a registry whose CA is not trusted"
grep -q "Failed to get image digest" "$tmp/poller.err" || fail "untrusted registry: $(cat "$tmp/poller.err")"
assert_eq "$lines" "$(wc -l <"$tmp/kapi.log")" "API requests after the digest failed"
run_poller -ns golden -cron other -url "docker://$REGISTRY_ANON/disk/gzip:v1" -certdir "$REGISTRY_CA_DIR"
assert_eq 1 "$RC" "a cron that does not exist"
grep -q "Failed getting DataImportCron golden/other.*HTTP 404" "$tmp/poller.err" || fail "404: $(cat "$tmp/poller.err")"

pass "cdi-source-update-poller: digest, CDI's patch, unchanged digest, index, basic auth, refusals"
