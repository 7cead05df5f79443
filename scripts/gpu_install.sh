# Sourced by scripts/gpu_check.sh and scripts/gpu_search_time.sh on a CUDA machine without
# network: installs scaler from $repo and what it needs from the wheels in $wheels (made by
# scripts/gpu_wheels.sh) without touching the machine's torch; logs to $out/install.log.
# Needs $repo, $wheels, $out and $python; may export PYTHONPATH (the fallback below).
if [ ! -d "$wheels" ]; then
  echo "${0##*/}: wheels folder $wheels does not exist; make it with scripts/gpu_wheels.sh" >&2
  exit 2
fi
# Pin the torch that is there, so that pip can neither replace nor "upgrade" it.
"$python" -c 'import torch; print("torch==" + torch.__version__)' >"$out/constraints.txt"
"$python" -m pip install -q --no-index --find-links "$wheels" -c "$out/constraints.txt" \
  --no-build-isolation "$repo" >"$out/install.log" 2>&1 || {
  # pip's resolver refused (the machine's own packages can pin things the folder cannot
  # meet): put each missing module's wheel, and nothing else, on a path of its own, and run
  # scaler from the checkout. The machine's packages, torch first, stay as they are.
  site="$out/site"
  for pair in optuna:optuna alembic:alembic colorlog:colorlog mako:mako sqlalchemy:sqlalchemy \
    fvcore:fvcore iopath:iopath yacs:yacs termcolor:termcolor tqdm:tqdm yaml:pyyaml \
    typing_extensions:typing_extensions packaging:packaging markupsafe:markupsafe \
    scipy:scipy statsmodels:statsmodels patsy:patsy; do
    module=${pair%%:*} dist=${pair#*:}
    "$python" -c "import $module" 2>/dev/null && continue
    for w in "$wheels"/"$dist"-*.whl; do
      [ -e "$w" ] && "$python" -m pip install -q --no-index --no-deps --target "$site" "$w" \
        >>"$out/install.log" 2>&1
    done
  done
  export PYTHONPATH="$repo:$site${PYTHONPATH:+:$PYTHONPATH}"
}
"$python" -c "import scaler, optuna, fvcore, scipy, statsmodels" || {
  echo "${0##*/}: scaler, optuna, fvcore, scipy or statsmodels does not import; see $out/install.log" >&2
  exit 1
}
