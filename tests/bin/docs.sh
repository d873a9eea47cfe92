#!/usr/bin/env bash
# `make docs`: the collection's documentation site, rendered by antsibull-docs and Sphinx into
# .cache/docs/site/build/html (one page per module, plugin and role, from their DOCUMENTATION and
# argument specs). Sphinx and its theme go into their own virtualenv (.cache/docs/venv), so that
# make test's set-up does not carry them; make lint runs antsibull-docs' lint of the same docs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANSIBLE_COLLECTIONS_PATH=$root/.collections ANSIBLE_HOME=$root/.ansible

# Pinned like requirements-dev.txt (antsibull-docs' own sphinx-init lists these packages).
DOCS_REQUIREMENTS=(antsibull-docs==2.28.0 ansible-core==2.19.14 sphinx==9.0.4 sphinx-ansible-theme==0.10.4 ansible-pygments==0.1.2)
venv=.cache/docs/venv
site=.cache/docs/site
want=$(printf '%s\n' "${DOCS_REQUIREMENTS[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "docs: installing ${DOCS_REQUIREMENTS[*]} into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet "${DOCS_REQUIREMENTS[@]}" 2> >(grep -v "^WARNING: Location" >&2)
  echo "$want" >"$venv/.requirements.sha256"
fi
tests/bin/setup.sh collection
rm -rf "$site"
mkdir -p "$site"
chmod 0755 "$site"  # antsibull-docs wants a directory only its owner can write
PATH=$root/$venv/bin:$PATH
antsibull-docs sphinx-init --use-current --dest-dir "$site" infra.k3s >/dev/null
# build.sh's two steps, but: a module, plugin or role whose documentation does not validate fails the
# build (instead of getting an error page), and warnings are not errors, because Sphinx cannot fetch
# the Python, Jinja and Ansible inventories it links to (intersphinx) from these machines.
mkdir -p "$site/rst"
chmod og-w "$site/rst"
antsibull-docs --config-file "$site/antsibull-docs.cfg" collection --cleanup everything --use-current --fail-on-error \
  --dest-dir "$site/rst" infra.k3s
sphinx-build -M html "$site/rst" "$site/build" -c "$site" --quiet
echo "docs: open $site/build/html/index.html"
