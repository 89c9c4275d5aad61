# Shared by the npm-installed clients (scripts/openclaw-install.sh, claude-code-install.sh,
# codex-install.sh): each pinned package goes into its own folder under a cache, installed into a
# temporary folder and renamed into place when complete (a stamp file marks it), with the npm
# download cache beside it, so CI can cache one folder. Source it after setting LOG_NAME.

log() { echo "[$LOG_NAME] $*" >&2; }

machine_arch() {  # x64 or arm64, as npm's per-platform packages name them
  case "$(uname -m)" in
    x86_64 | amd64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) log "unsupported machine $(uname -m)"; return 1 ;;
  esac
}

cache_open() {  # cache_open DIR: create it and its npm cache; two installs sharing it take turns
  CACHE_DIR="$1"
  NPM_CACHE="$CACHE_DIR/npm-cache"
  command -v npm >/dev/null || { log "npm is required (any version that can reach the registry)"; return 1; }
  mkdir -p "$CACHE_DIR" "$NPM_CACHE"
  if command -v flock >/dev/null; then
    exec 9>"$CACHE_DIR/.lock"
    flock 9
  fi
}

npm_install() {  # npm_install PREFIX SPEC...: install scripts off (none of ours needs them)
  local prefix="$1"; shift
  npm install --no-audit --no-fund --no-update-notifier --ignore-scripts --loglevel=error \
    --cache "$NPM_CACHE" --prefer-offline --prefix "$prefix" "$@" >&2
}

install_pinned() {  # install_pinned APP_DIR SPEC PROBE: SPEC into APP_DIR unless stamped and PROBE exists
  local app_dir="$1" spec="$2" probe="$3" tmp
  if [[ -f "$app_dir/.installed" && -e "$probe" ]]; then
    log "$spec cached"
    return 0
  fi
  log "installing $spec"
  tmp="$app_dir.tmp.$$"
  rm -rf "$tmp" "$app_dir"
  mkdir -p "$tmp"
  echo '{"name":"tollgate-client-cache","private":true}' > "$tmp/package.json"
  npm_install "$tmp" "$spec"
  echo "$spec" > "$tmp/.installed"
  mv "$tmp" "$app_dir"
}

drop_stale() {  # drop_stale KEEP... : older pinned versions in CACHE_DIR, so it does not grow without end
  local old keep stale
  for old in "$CACHE_DIR"/node-* "$CACHE_DIR"/app-* "$CACHE_DIR"/codex-*; do
    [[ -e "$old" ]] || continue
    stale=1
    for keep in "$@"; do [[ "$old" == "$keep" ]] && stale=0; done
    [[ $stale == 1 ]] || continue
    log "removing stale $(basename "$old")"
    rm -rf "$old"
  done
}
