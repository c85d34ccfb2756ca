#!/usr/bin/env bash
# The Kubernetes manifests in deploy/ and the container files: every YAML document
# parses, has its required fields, and every image, volume, mount and device path, the
# spec path and the securityContext match what the binary and the image expect:
#   - image localhost/vimport:<VIMPORT_VERSION of cmd/vimport/commands.h>
#   - paths from pkg/spec/spec.h's SPEC_DEFAULT_* (/data, /dev/cdi-block-volume,
#     /dev/termination-log, /certs, /extraheaders) and /etc/vimport/spec.yaml
#   - uid 107, non-root, read-only root filesystem, no capabilities, 600M memory limit
#   - the ConfigMap's spec is the same document as deploy/datavolume.yaml, and the
#     binary itself accepts it and the other DataVolume examples (datavolume-registry.yaml,
#     datavolume-gcs.yaml)
#     (`vimport import --spec` with the target and the certificate mount pointed into a
#     scratch dir, against an unreachable URL)
#   - Dockerfile's last stage and Containerfile.scratch: FROM scratch, USER 107,
#     ENTRYPOINT ["/vimport"], the CA bundle path, qemu-nbd's files, the binary at
#     /usr/bin/cdi-image-size-detection, cdi-containerimage-server and
#     cdi-source-update-poller
#   - deploy/dataimportcron.yaml: DataImportCrons with a registry url, one per pullMethod
# kubectl, when installed and a cluster answers (client dry runs still need the API
# server's resource list), also checks them with --dry-run=client --validate=false.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_cmd python3
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (apt-get install python3-yaml)"
tmp=$(e2e_tmpdir)

python3 - "$VIMPORT_TOP" "$tmp" <<'EOF' || fail "deploy/ manifests do not match what vimport expects (above)"
import glob, os, re, subprocess, sys, yaml

top, tmp = sys.argv[1], sys.argv[2]
errors = []

def err(where, msg):
    errors.append(f"{where}: {msg}")

def header_define(path, name):
    text = open(os.path.join(top, path)).read()
    m = re.search(r'#define\s+' + name + r'\s+"([^"]*)"', text)
    if not m:
        sys.exit(f"{path}: no #define {name}; update tests/e2e/test_manifests.sh")
    return m.group(1)

version = header_define("cmd/vimport/commands.h", "VIMPORT_VERSION")
image = f"localhost/vimport:{version}"
target_path = header_define("pkg/spec/spec.h", "SPEC_DEFAULT_TARGET_PATH")
data_dir = os.path.dirname(target_path)
block_dev = header_define("pkg/spec/spec.h", "SPEC_DEFAULT_TARGET_BLOCK_DEVICE")
term_log = header_define("pkg/spec/spec.h", "SPEC_DEFAULT_TERMINATION_MESSAGE_PATH")
certs = header_define("pkg/spec/spec.h", "SPEC_DEFAULT_MOUNT_CERTS")
extra = header_define("pkg/spec/spec.h", "SPEC_DEFAULT_MOUNT_EXTRA_HEADERS")
spec_path = "/etc/vimport/spec.yaml"
mount_paths = {data_dir, certs, extra, spec_path}
commands = {"import", "verify", "sum", "sniff"}

files = sorted(glob.glob(os.path.join(top, "deploy", "*.yaml")))
if len(files) < 5:
    err("deploy", f"expected the DataVolume, ConfigMap, Jobs, CronJob and CDI files, found {len(files)}")

docs = []  # (where, doc)
for f in files:
    rel = os.path.relpath(f, top)
    try:
        loaded = [d for d in yaml.safe_load_all(open(f)) if d is not None]
    except yaml.YAMLError as e:
        err(rel, f"does not parse: {e}")
        continue
    if not loaded:
        err(rel, "holds no YAML document")
    for i, d in enumerate(loaded):
        where = f"{rel}#{i}"
        if not isinstance(d, dict):
            err(where, "is not a mapping")
            continue
        for k in ("apiVersion", "kind", "metadata"):
            if k not in d:
                err(where, f"missing {k}")
        if not isinstance(d.get("metadata"), dict) or not d["metadata"].get("name"):
            err(where, "missing metadata.name")
        docs.append((where, d))

kinds = {}
for where, d in docs:
    kinds.setdefault(d.get("kind"), []).append((where, d))

configmaps = {d["metadata"]["name"]: d for _, d in kinds.get("ConfigMap", [])}

def check_spec_doc(where, spec, need_hash=True):
    if spec.get("apiVersion") != "cdi.kubevirt.io/v1beta1" or spec.get("kind") != "DataVolume":
        err(where, "the spec must be a cdi.kubevirt.io/v1beta1 DataVolume")
    if not isinstance(spec.get("spec"), dict) or "source" not in spec["spec"]:
        err(where, "the spec needs spec.source")
    v = spec.get("vimport") or {}
    t = v.get("target") or {}
    if t.get("path", target_path) != target_path:
        err(where, f"vimport.target.path {t.get('path')} is not {target_path}, where the Jobs mount the volume")
    if t.get("blockDevice", block_dev) != block_dev:
        err(where, f"vimport.target.blockDevice {t.get('blockDevice')} is not {block_dev}")
    if v.get("terminationMessagePath", term_log) != term_log:
        err(where, f"vimport.terminationMessagePath is not {term_log}")
    m = v.get("mounts") or {}
    if m.get("certs", certs) != certs or m.get("extraHeaders", extra) != extra:
        err(where, f"vimport.mounts must stay at CDI's {certs} and {extra}")
    if need_hash and not v.get("expectedBlockHash"):
        err(where, "the verification extension needs vimport.expectedBlockHash (verify compares with it)")

# The DataImportCron examples: a registry url, one with each pullMethod (deploy/README.md).
crons = kinds.get("DataImportCron", [])
methods = set()
for where, d in crons:
    reg = (((d.get("spec") or {}).get("template") or {}).get("spec") or {}).get("source", {}).get("registry") or {}
    if not str(reg.get("url", "")).startswith("docker://"):
        err(where, "a DataImportCron example needs spec.template.spec.source.registry.url docker://...")
    if not (d.get("spec") or {}).get("schedule"):
        err(where, "a DataImportCron needs spec.schedule")
    methods.add(reg.get("pullMethod"))
if methods != {"pod", "node"}:
    err("deploy", f"expected DataImportCron examples with pullMethod pod and node, found {sorted(map(str, methods))}")

# deploy/datavolume.yaml's DataVolume and the ConfigMap's spec are the same document;
# the other DataVolume examples (datavolume-registry.yaml) are checked the same way, but
# need no expected block hash.
all_dv = kinds.get("DataVolume", [])
dv = [(w, d) for w, d in all_dv if w.startswith("deploy/datavolume.yaml#")]
if len(dv) != 1:
    err("deploy", f"expected one DataVolume in deploy/datavolume.yaml, found {len(dv)}")
else:
    check_spec_doc(dv[0][0], dv[0][1])
other_dv = [(w, d) for w, d in all_dv if not w.startswith("deploy/datavolume.yaml#")]
if not any("registry" in ((d.get("spec") or {}).get("source") or {}) for _, d in other_dv):
    err("deploy", "expected a DataVolume example with a registry source (datavolume-registry.yaml)")
s3_dv = [d for _, d in other_dv if "s3" in ((d.get("spec") or {}).get("source") or {})]
secrets = {d["metadata"]["name"]: d for _, d in kinds.get("Secret", [])}
if not s3_dv:
    err("deploy", "expected a DataVolume example with an s3 source (datavolume-s3.yaml)")
for d in s3_dv:
    ref = d["spec"]["source"]["s3"].get("secretRef")
    keys = set(((secrets.get(ref) or {}).get("stringData") or {}).keys())
    if ref is not None and keys != {"accessKeyId", "secretKey"}:
        err("deploy/datavolume-s3.yaml", f"secretRef {ref}: expected a Secret with accessKeyId and secretKey")

def loader_copy(spec, name):
    """The spec pointed at scratch paths and an unreachable source, for the binary's loader."""
    v = spec["vimport"]
    v["target"] = {"path": os.path.join(tmp, "disk.img")}
    v["terminationMessagePath"] = os.path.join(tmp, "termination-log")
    mounts = v.setdefault("mounts", {})
    mounts["certs"] = tmp
    if any("certConfigMap" in (src or {}) for src in spec["spec"]["source"].values()):
        mounts["certs"] = os.path.join(tmp, "certs")  # a CA in PEM, as the ConfigMap holds
        os.makedirs(mounts["certs"], exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=manifests-test-ca",
                        "-days", "1", "-keyout", os.path.join(tmp, "ca.key"),
                        "-out", os.path.join(mounts["certs"], "ca.crt")],
                       check=True, capture_output=True)
    mounts["extraHeaders"] = tmp
    if "secret" in mounts:  # secretRef's files, as the kubelet mounts them
        mounts["secret"] = os.path.join(tmp, "secret")
        os.makedirs(mounts["secret"], exist_ok=True)
        for k, val in (("accessKeyId", "user"), ("secretKey", "password"),
                       ("credentials.json", '{"type": "service_account"}')):
            with open(os.path.join(mounts["secret"], k), "w") as f:
                f.write(val)
    v["retries"] = 0
    src = spec["spec"]["source"]
    if "http" in src:
        src["http"]["url"] = "http://127.0.0.1:9/disk.raw.xz"
    if "registry" in src:
        src["registry"]["url"] = "docker://127.0.0.1:9/containerdisks/fedora:latest"
    if "gcs" in src:
        src["gcs"]["url"] = "https://127.0.0.1:9/my-images/disk.qcow2"
    if "s3" in src:
        src["s3"]["url"] = "http://127.0.0.1:9/images/disk.qcow2"
    with open(os.path.join(tmp, name), "w") as f:
        yaml.safe_dump(spec, f)

for i, (where, d) in enumerate(other_dv):
    check_spec_doc(where, d, need_hash=False)
    loader_copy(yaml.safe_load(yaml.safe_dump(d)), f"spec-example-{i}.yaml")
cm = configmaps.get("vimport-spec")
if cm is None:
    err("deploy", "no ConfigMap vimport-spec")
else:
    try:
        cm_spec = yaml.safe_load(cm["data"]["spec.yaml"])
    except Exception as e:  # a missing key or a YAML error
        err("ConfigMap vimport-spec", f"data.spec.yaml: {e}")
        cm_spec = None
    if cm_spec is not None:
        check_spec_doc("ConfigMap vimport-spec spec.yaml", cm_spec)
        if dv and cm_spec != dv[0][1]:
            err("ConfigMap vimport-spec", "spec.yaml differs from deploy/datavolume.yaml; keep them the same")
        # Hand it to the binary's own loader, pointed at scratch paths.
        loader_copy(yaml.safe_load(cm["data"]["spec.yaml"]), "spec.yaml")

def pod_specs():
    for where, d in docs:
        k = d.get("kind")
        if k == "Job":
            yield where, d["spec"]["template"]["spec"]
        elif k == "CronJob":
            yield where, d["spec"]["jobTemplate"]["spec"]["template"]["spec"]

n_pods = 0
for where, ps in pod_specs():
    n_pods += 1
    sc = ps.get("securityContext") or {}
    if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") != 107:
        err(where, "pod securityContext must have runAsNonRoot: true and runAsUser: 107 (CDI's importer uid)")
    if ps.get("restartPolicy") not in ("Never", "OnFailure"):
        err(where, "a Job's pod needs restartPolicy Never or OnFailure")
    volumes = {v["name"]: v for v in ps.get("volumes", [])}
    for c in ps.get("containers", []):
        cw = f"{where} container {c.get('name')}"
        if c.get("image") != image:
            err(cw, f"image {c.get('image')} is not {image} (what make image builds)")
        args = c.get("args") or []
        if c.get("command"):
            err(cw, "sets command; the image's ENTRYPOINT is /vimport, give only args")
        if not args or args[0] not in commands:
            err(cw, f"args must start with a vimport command {sorted(commands)}, got {args}")
        if "--spec" in args:
            sp = args[args.index("--spec") + 1]
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
            m = mounts.get(sp)
            if sp != spec_path or m is None:
                err(cw, f"--spec {sp}: must be {spec_path}, mounted from the spec ConfigMap")
            else:
                vol = volumes.get(m["name"], {})
                cmname = (vol.get("configMap") or {}).get("name")
                if cmname not in configmaps or m.get("subPath") not in configmaps[cmname].get("data", {}):
                    err(cw, f"{sp} must be a subPath of a ConfigMap in deploy/ holding that key")
        if c.get("terminationMessagePath", term_log) != term_log:
            err(cw, f"terminationMessagePath must be {term_log}")
        csc = c.get("securityContext") or {}
        if csc.get("readOnlyRootFilesystem") is not True:
            err(cw, "needs readOnlyRootFilesystem: true")
        if csc.get("allowPrivilegeEscalation") is not False or csc.get("privileged"):
            err(cw, "needs allowPrivilegeEscalation: false and no privileged")
        if (csc.get("capabilities") or {}).get("drop") != ["ALL"] or (csc.get("capabilities") or {}).get("add"):
            err(cw, "must drop ALL capabilities and add none")
        lim = (c.get("resources") or {}).get("limits") or {}
        if lim.get("memory") != "600M":
            err(cw, f"memory limit {lim.get('memory')} is not CDI's 600M")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                err(cw, f"volumeMount {m['name']} names no volume of the pod")
            if m["mountPath"] not in mount_paths:
                err(cw, f"mountPath {m['mountPath']} is none of the paths vimport reads {sorted(mount_paths)}")
            if args and args[0] == "verify" and m["mountPath"] == data_dir and not m.get("readOnly"):
                err(cw, f"verify must mount {data_dir} readOnly")
        for dvc in c.get("volumeDevices", []):
            if dvc["name"] not in volumes:
                err(cw, f"volumeDevice {dvc['name']} names no volume of the pod")
            if dvc["devicePath"] != block_dev:
                err(cw, f"devicePath {dvc['devicePath']} is not {block_dev}")
if n_pods < 3:
    err("deploy", f"expected an import Job, a verify Job and a CronJob, found {n_pods} pod templates")
if not any(d.get("kind") == "CronJob" for _, d in docs):
    err("deploy", "no CronJob that re-verifies")

# The CDI side: the operator's importer image and CDI's pod limits.
op = [d for _, d in kinds.get("Deployment", []) if d["metadata"]["name"] == "cdi-operator"]
if not op:
    err("deploy", "no cdi-operator Deployment patch setting IMPORTER_IMAGE")
for d in op:
    envs = {e["name"]: e.get("value") for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    if envs.get("IMPORTER_IMAGE") != image:
        err("cdi-operator", f"IMPORTER_IMAGE is {envs.get('IMPORTER_IMAGE')}, not {image}")
cdi = [d for _, d in kinds.get("CDI", [])]
if not cdi or cdi[0]["spec"]["config"]["podResourceRequirements"]["limits"].get("memory") != "600M":
    err("deploy", "the CDI CR example must set podResourceRequirements.limits.memory 600M")

# The container files.
def final_stage(path):
    lines = [l.strip() for l in open(os.path.join(top, path)) if l.strip() and not l.lstrip().startswith("#")]
    starts = [i for i, l in enumerate(lines) if l.upper().startswith("FROM ")]
    return lines[starts[-1]:] if starts else []
for path in ("Dockerfile", "Containerfile.scratch"):
    st = final_stage(path)
    if not st or st[0].split()[1] != "scratch":
        err(path, "the final stage must be FROM scratch")
    if "USER 107" not in st:
        err(path, "the final stage must say USER 107")
    if 'ENTRYPOINT ["/vimport"]' not in st:
        err(path, 'the final stage must say ENTRYPOINT ["/vimport"]')
    if not any(l.startswith("COPY") and l.endswith("/etc/ssl/certs/ca-certificates.crt") for l in st):
        err(path, "the final stage must copy the CA bundle to /etc/ssl/certs/ca-certificates.crt")
    if any(l.upper().startswith("RUN") for l in st):
        err(path, "the final stage has no shell: no RUN")
    # the programs CDI runs from the importer image by path: links to the binary, which
    # hack/image-links.sh makes in the links/ directory the final stage copies to /
    if not any(l.startswith("COPY") and "vimport-static" in l and l.endswith(" /vimport") for l in st):
        err(path, "the final stage must COPY the binary to /vimport")
    if not any(l.startswith("COPY") and l.endswith("links/ /") for l in st):
        err(path, "the final stage must COPY the links/ directory of hack/image-links.sh to /")
    links = open(os.path.join(top, "hack/image-links.sh")).read()
    for program in ("cdi-image-size-detection", "cdi-containerimage-server",
                    "cdi-source-update-poller"):
        if program not in links:
            err("hack/image-links.sh", f"must link /usr/bin/{program} to /vimport (CDI runs it by that path)")
    # vhdx and sparse vmdk go through qemu-nbd: both images carry the files
    # hack/image-qemu-nbd-files.sh copies into a qemu-nbd directory
    if not any(l.startswith("COPY") and l.endswith("qemu-nbd/ /") for l in st):
        err(path, "the final stage must COPY the qemu-nbd/ directory of hack/image-qemu-nbd-files.sh to /")
if "hack/image-qemu-nbd-files.sh /qemu-nbd" not in open(os.path.join(top, "Dockerfile")).read():
    err("Dockerfile", "the build stage must run hack/image-qemu-nbd-files.sh /qemu-nbd")

for e in errors:
    print("  " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF

# The binary's own spec loader accepts the ConfigMap's spec and every other DataVolume
# example: the import gets past the spec (its summary is logged) and fails only at the
# unreachable source.
if [ -x "$VIMPORT" ]; then
  for spec in "$tmp/spec.yaml" "$tmp"/spec-example-*.yaml; do
    rm -f "$tmp/termination-log"
    rc=0
    "$VIMPORT" import --spec "$spec" >"$tmp/out" 2>&1 || rc=$?
    [ "$rc" -ne 2 ] || fail "vimport rejected the command line: $(cat "$tmp/out")"
    if grep -q "$(basename "$spec"):[0-9]*:" "$tmp/out"; then
      fail "vimport's spec loader rejects $(basename "$spec") (from deploy/): $(cat "$tmp/out")"
    fi
    [ -s "$tmp/termination-log" ] || fail "no termination message from the spec check: $(cat "$tmp/out")"
    # JSON on success or a verdict, CDI's plain text for any other failure (docs/cdi.md)
    grep -Eq '"message"|^Unable to (process data|connect to [a-z0-9]+ data source): ' \
      "$tmp/termination-log" || fail "bad termination message: $(cat "$tmp/termination-log")"
  done
  ls "$tmp"/spec-example-*.yaml >/dev/null 2>&1 || fail "no DataVolume example besides datavolume.yaml was checked"
fi

if command -v kubectl >/dev/null 2>&1 &&
  kubectl api-resources --request-timeout=3s >/dev/null 2>&1; then
  for f in "$VIMPORT_TOP"/deploy/*.yaml; do
    case $(basename "$f") in datavolume.yaml | dataimportcron.yaml | cdi-*.yaml) continue ;; esac # CRDs / patches
    kubectl apply --dry-run=client --validate=false -f "$f" -o name >/dev/null 2>"$tmp/kubectl.err" ||
      fail "kubectl rejects $f: $(cat "$tmp/kubectl.err")"
  done
fi
pass "deploy/ manifests"
