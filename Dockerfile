# exovoice: docker build -t exovoice . && docker run -p 3000:3000 --ulimit nofile=65536:65536 --env-file .env -v exovoice-data:/app/data exovoice
# Each live call holds a socket (four with the agent): the --ulimit (Compose: ulimits: nofile:)
# raises the container's descriptor limit, often 1024, to what MAX_SESSIONS needs.
FROM denoland/deno:2.9.6

WORKDIR /app

# Dependencies first, so they stay cached while only the code changes.
COPY deno.json deno.lock ./
COPY std/ std/
RUN deno install --frozen

COPY main.ts ./
COPY src/ src/
COPY assets/ assets/
RUN deno cache --frozen main.ts

# Call records (Deno KV) and recordings live here; mount a volume to keep them.
RUN mkdir -p /app/data && chown deno:deno /app/data
VOLUME /app/data
ENV KV_PATH=/app/data/exovoice.kv

USER deno
ENV PORT=3000
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["deno", "eval", "const r = await fetch(`http://127.0.0.1:${Deno.env.get('PORT') ?? 3000}/health`); Deno.exit(r.ok ? 0 : 1)"]

CMD ["run", "--frozen", "--cached-only", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-ffi", "--v8-flags=--initial-heap-size=256", "main.ts"]
