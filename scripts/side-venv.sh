# Sourced by the scripts that keep a tool in a virtual environment of its own (vLLM, llm-compressor): both pin a
# torch and a transformers other than the project's. Defines `log` and `side_venv_ready`.
#   TOOL      name shown in messages        VENV      where the environment lives
#   STAMP     file that marks it complete   PYTHON    the interpreter that creates it (default python3)

log() { printf '\033[1m[%s]\033[0m %s\n' "$TOOL" "$*"; }

# Returns 0 when the stamp says the environment is complete; otherwise makes sure the venv exists and returns 1,
# so the caller installs into it.
side_venv_ready() {
  if [[ -f "$STAMP" && -x "$VENV/bin/python" ]]; then
    log "ready in $VENV"
    return 0
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    mkdir -p "$(dirname "$VENV")"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
  fi
  return 1
}
