#!/bin/sh
# Renders the Kannel config from the environment, then runs the box named as the argument:
#   entrypoint.sh bearerbox | smsbox
set -eua  # -a: every variable set below is exported, for envsubst

: "${KANNEL_SMSC:=fake}"                     # fake (development) or smpp (production)
: "${KANNEL_ADMIN_PORT:=13000}"
: "${KANNEL_ADMIN_PASSWORD:?set KANNEL_ADMIN_PASSWORD}"
: "${KANNEL_SMSBOX_PORT:=13001}"
: "${KANNEL_SENDSMS_PORT:=13013}"
: "${KANNEL_BEARERBOX_HOST:=bearerbox}"
: "${KANNEL_BOX_ALLOW_IP:=127.0.0.1;10.*.*.*;172.*.*.*;192.168.*.*}"
: "${KANNEL_SENDSMS_ALLOW_IP:=127.0.0.1;10.*.*.*;172.*.*.*;192.168.*.*}"
: "${KANNEL_LOG_DIR:=/var/log/kannel}"
: "${KANNEL_LOG_LEVEL:=1}"
: "${KANNEL_STORE_DIR:=/var/spool/kannel}"
: "${KANNEL_HTTP_RETRIES:=10}"
: "${KANNEL_HTTP_RETRY_DELAY:=10}"
: "${KANNEL_HTTP_TIMEOUT:=30}"
: "${KANNEL_ADMIN_ALLOW_IP:=127.0.0.1}"
: "${KANNEL_BOT_URL:=http://bot:8080}"
: "${SORO_SMS_KANNEL_USERNAME:=soro}"
: "${SORO_SMS_KANNEL_PASSWORD:?set SORO_SMS_KANNEL_PASSWORD}"
: "${SORO_SMS_MO_SECRET:?set SORO_SMS_MO_SECRET}"
: "${KANNEL_SMPP_HOST:=}" "${KANNEL_SMPP_PORT:=2775}" "${KANNEL_SMPP_SYSTEM_ID:=}" "${KANNEL_SMPP_PASSWORD:=}"
: "${KANNEL_SMPP_SYSTEM_TYPE:=}" "${KANNEL_SMPP_SOURCE_TON:=5}" "${KANNEL_SMPP_SOURCE_NPI:=0}"
: "${KANNEL_SMPP_MSG_ID_TYPE:=0x00}" "${KANNEL_SMPP_THROUGHPUT:=10}"

# The bot's URL with the secret as its credentials: Kannel sends them as an Authorization header.
KANNEL_BOT_AUTH_URL="${KANNEL_BOT_URL%%://*}://kannel:${SORO_SMS_MO_SECRET}@${KANNEL_BOT_URL#*://}"
KANNEL_BOT_AUTH_URL="${KANNEL_BOT_AUTH_URL%/}"

: "${KANNEL_TEMPLATES:=/etc/kannel/soro}"      # where the image keeps kannel.conf and smsc-*.conf
: "${KANNEL_RENDERED:=/etc/kannel/rendered}"   # where the filled-in copies go
out="$KANNEL_RENDERED"
mkdir -p "$out" "$KANNEL_LOG_DIR" "$KANNEL_STORE_DIR"
KANNEL_SMSC_CONF="$out/smsc.conf"
vars='${KANNEL_ADMIN_PORT} ${KANNEL_ADMIN_PASSWORD} ${KANNEL_ADMIN_ALLOW_IP} ${KANNEL_HTTP_TIMEOUT} ${KANNEL_SMSBOX_PORT} ${KANNEL_SENDSMS_PORT}
${KANNEL_BEARERBOX_HOST} ${KANNEL_BOX_ALLOW_IP} ${KANNEL_SENDSMS_ALLOW_IP} ${KANNEL_LOG_DIR} ${KANNEL_LOG_LEVEL}
${KANNEL_STORE_DIR} ${KANNEL_HTTP_RETRIES} ${KANNEL_HTTP_RETRY_DELAY} ${KANNEL_BOT_AUTH_URL} ${KANNEL_SMSC_CONF}
${SORO_SMS_KANNEL_USERNAME} ${SORO_SMS_KANNEL_PASSWORD} ${SORO_SMS_MO_SECRET} ${KANNEL_SMPP_HOST} ${KANNEL_SMPP_PORT}
${KANNEL_SMPP_SYSTEM_ID} ${KANNEL_SMPP_PASSWORD} ${KANNEL_SMPP_SYSTEM_TYPE} ${KANNEL_SMPP_SOURCE_TON}
${KANNEL_SMPP_SOURCE_NPI} ${KANNEL_SMPP_MSG_ID_TYPE} ${KANNEL_SMPP_THROUGHPUT}'
envsubst "$vars" < "$KANNEL_TEMPLATES/kannel.conf" > "$out/kannel.conf"
envsubst "$vars" < "$KANNEL_TEMPLATES/smsc-$KANNEL_SMSC.conf" > "$KANNEL_SMSC_CONF"
exec "$1" "$out/kannel.conf"
