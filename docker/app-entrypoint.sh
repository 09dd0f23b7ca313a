#!/bin/sh
# Roles of the app image:
#   actions  the rasa-sdk action server on 5055 (stateless; reads the knowledge index read-only)
#   console  the Streamlit console on 8501
#   worker   the help-desk worker (SLA clocks, notifications, retention purge); health on 5007
#   setup    one-shot: migrate the schema, load the demo data when ATENDE_DEMO_DATA=1,
#            ingest the documentation into $KNOWLEDGE_INDEX_DIR
set -eu
: "${DATABASE_URL:?DATABASE_URL is required}"
role="${1:-actions}"
[ "$#" -gt 0 ] && shift
case "$role" in
  actions)
    exec python -m rasa_sdk --actions actions --port 5055 "$@" ;;
  console)
    exec streamlit run console/app.py --server.port 8501 --server.address 0.0.0.0 \
      --server.headless true --browser.gatherUsageStats false "$@" ;;
  worker)
    exec python -m helpdesk worker --host 0.0.0.0 --port 5007 "$@" ;;
  setup)
    python -m helpdesk migrate
    if [ "${ATENDE_DEMO_DATA:-0}" = "1" ]; then python -m helpdesk demo; fi
    exec python -m knowledge ingest "$@" ;;
  *)
    echo "unknown role '$role' (actions | console | worker | setup)" >&2; exit 2 ;;
esac
