# Sourced by scripts/test.sh and scripts/drill.sh (not run on its own): starts PostgreSQL and Garage (S3)
# when needed and exports the KILN_TEST_* variables the PostgreSQL + S3 tests read.
pg_env="$(scripts/pg-test-start.sh | tail -n 1)"
garage_env="$(scripts/garage-test-start.sh | tail -n 1)"
export KILN_TEST_DATABASE_URL="${pg_env#DATABASE_URL=}"
for pair in $garage_env; do
  case "$pair" in
    S3_ENDPOINT=*) export KILN_TEST_S3_ENDPOINT="${pair#*=}" ;;
    S3_REGION=*) export KILN_TEST_S3_REGION="${pair#*=}" ;;
    S3_BUCKET=*) export KILN_TEST_S3_BUCKET="${pair#*=}" ;;
    S3_KEY=*) export KILN_TEST_S3_ACCESS_KEY_ID="${pair#*=}" ;;
    S3_SECRET=*) export KILN_TEST_S3_SECRET_ACCESS_KEY="${pair#*=}" ;;
  esac
done
