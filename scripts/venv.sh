# Sourced by the scripts in this folder: the Python tools the project uses, installed once into
# .venv from PyPI. `ensure_venv moto cargo-lambda cfn-lint` installs what is missing.
ensure_venv() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local tool
  for tool in "$@"; do
    case "$tool" in
      moto) .venv/bin/python -c 'import moto, flask, werkzeug, boto3' 2>/dev/null \
              || .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==5.2.*" ;;
      # The wheel carries the binary; Zig is only needed for cross-compiling.
      cargo-lambda) [ -x .venv/bin/cargo-lambda ] \
              || .venv/bin/pip install --quiet --disable-pip-version-check --no-deps "cargo-lambda==1.9.*" ;;
      # With SAM's translator, cfn-lint checks the resources the Serverless transform makes.
      cfn-lint) { [ -x .venv/bin/cfn-lint ] && .venv/bin/python -c 'import samtranslator' 2>/dev/null; } \
              || .venv/bin/pip install --quiet --disable-pip-version-check "cfn-lint==1.*" "aws-sam-translator==1.*" ;;
    esac
  done
}

# Debian's Chromium and its ChromeDriver, for the console's browser tests (tests/it/console.rs):
# installed with apt-get when absent (as root, or through sudo).
ensure_browser() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing chromium and chromium-driver (apt-get) for the console's browser tests"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
}
