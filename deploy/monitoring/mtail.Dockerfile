# mtail from Debian 12, as `invoke up --monitoring` runs it (no Docker Official Image exists):
# it turns nginx's metrics access log into chorus_http_responses_total.
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends mtail \
    && rm -rf /var/lib/apt/lists/*

COPY mtail/ /etc/mtail/
EXPOSE 3903
ENTRYPOINT ["mtail", "--progs", "/etc/mtail", "--logs", "/var/log/nginx-metrics/access.log", "--port", "3903", "--logtostderr"]
