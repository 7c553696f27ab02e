#!/bin/bash
# Weekly MTA-STS scan as a Slurm job array: task K scans shard K of 8 and uploads Parquet to
#   s3://lake/mta-sts/dt=YYYY-MM-DD/part-K-of-8.parquet
# Submit (e.g. from cron every Monday): sbatch deploy/slurm-weekly.sh
# Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for an
# S3-compatible store) in the environment sbatch passes on, or in ~/.config/mta-sts-scan/s3.env.
#SBATCH --job-name=mta-sts-scan
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=1G
#SBATCH --time=12:00:00
#SBATCH --requeue
#SBATCH --output=mta-sts-scan-%A-%a.log
set -euo pipefail

SHARDS=8
LIST=${LIST:-$HOME/lists/tranco.csv}
LAKE=${LAKE:-s3://lake/mta-sts}
# Every task of the array shares one date and run id: the day the array was submitted.
RUN_DATE=${RUN_DATE:-$(date -u -d "@${SLURM_JOB_START_TIME:-$(date +%s)}" +%Y-%m-%d)}
if [ -f "$HOME/.config/mta-sts-scan/s3.env" ]; then
    set -a
    # shellcheck disable=SC1091
    . "$HOME/.config/mta-sts-scan/s3.env"
    set +a
fi

# The binary, or the container image: apptainer exec docker://registry.example.com/mta-sts-scan:0.1.0 mta-sts-scan
SCANNER=${SCANNER:-mta-sts-scan}

# --shard N takes K from SLURM_ARRAY_TASK_ID; --resume continues a requeued task from its parts.
exec $SCANNER scan "$LIST" \
    -o "$LAKE/dt=$RUN_DATE/part-{shard}.parquet" \
    --summary "$LAKE-summaries/dt=$RUN_DATE/summary-{shard}.json" \
    --run-id "${SLURM_ARRAY_JOB_ID:-manual}" \
    --shard "$SHARDS" \
    --log-format json \
    --flush-interval 1m \
    --resume
