# Sourced by scripts/test and scripts/lint: sets $python to the active virtual environment's,
# else ./.venv's (made here if needed), with dripper and its test extra installed into it.
if [ -n "${VIRTUAL_ENV:-}" ]; then
  python=$VIRTUAL_ENV/bin/python
else
  if [ ! -x .venv/bin/python ]; then
    echo "${0##*/}: making a virtual environment in .venv" >&2
    python3 -m venv .venv || { echo "${0##*/}: python3 -m venv failed: install python3-venv (Python 3.11 or newer)" >&2; exit 1; }
  fi
  python=$PWD/.venv/bin/python
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "${0##*/}: dripper needs Python 3.11 or newer" >&2; exit 1; }
"$python" -m pip install -q --disable-pip-version-check -e '.[test]'
