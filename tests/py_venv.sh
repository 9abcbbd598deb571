# Sourced by the tests of the Python tools: py_venv VENV PACKAGE MODULE makes VENV (a venv over
# Debian's Python packages, torch and h5py included) where it is missing and installs PACKAGE from
# PyPI into it unless MODULE imports; the test is skipped (exit 77) where PyPI cannot be reached.
py_venv() {
  local venv=$1 package=$2 module=$3
  [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/python" -c "import $module" 2>/dev/null && return 0
  "$venv/bin/pip" install -q "$package" >"$tmp/pip.log" 2>&1 ||
    { echo "SKIP: cannot install $package from PyPI: $(tail -1 "$tmp/pip.log")"; exit 77; }
}
