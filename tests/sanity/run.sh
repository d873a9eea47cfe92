#!/usr/bin/env bash
# ansible-test sanity on a copy of the tree laid out as ansible_collections/infra/k3s.
# Runs every sanity test that needs no container, in ansible-test's own virtual
# environments (--venv), with the Python of this machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-$root/.venv}
python_version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# Outside the git checkout: inside it, ansible-test would ask git for the files and find
# the copy ignored.
copy=${SANITY_DIR:-/var/tmp/infra-k3s-sanity}/ansible_collections/infra/k3s

# ansible-test downloads a get-pip script from a host these machines cannot reach,
# unless a cached one is in place: put ours there for the pip version it asks for.
pip_version=$("$venv/bin/python" - <<'PY'
import re, ansible_test._internal.python_requirements as pr
source = open(pr.__file__, encoding="utf-8").read()
print(re.search(r"pip='([0-9.]+)'", source).group(1))
PY
)
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
install -m 0644 "$root/tests/sanity/get_pip_bootstrap.py" "$cache/get_pip_${pip_version//./_}.py"

# A fresh copy of what git tracks (and untracked files it does not ignore); ansible-test's
# own output and virtual environments in tests/output survive between runs.
mkdir -p "$copy"
find "$copy" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
find "$copy/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} + 2>/dev/null || true
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -c) | tar --warning=no-timestamp -x -C "$copy"
printf 'tests/output/\n' >"$copy/.gitignore"

# kubernetes.core (a galaxy.yml dependency whose module_utils and doc fragment the Kubernetes modules use)
# beside the collection, where ansible-test looks for other collections: the copy in the venv.
core=$("$venv/bin/python" -c 'import ansible_collections.kubernetes.core as m; print(list(m.__path__)[0])')
rm -rf "$copy/../../kubernetes/core"
mkdir -p "$copy/../../kubernetes"
cp -r "$core" "$copy/../../kubernetes/core"

cd "$copy"
PATH=$venv/bin:$PATH "$venv/bin/ansible-test" sanity --venv --python "$python_version" --color no "$@"
