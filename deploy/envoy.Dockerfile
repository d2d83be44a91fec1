# The gateway image for Kubernetes: Envoy with the config docker-compose runs
# (gateway/envoy.compose.yaml), the descriptor set the transcoder reads, and the API docs.
#   docker build -f deploy/envoy.Dockerfile -t saaslitellm-gateway:0.1.0 .
# Rebuild it whenever `make generate` changes gateway/: it is the API's REST surface.
FROM envoyproxy/envoy:v1.40.0

COPY gateway/envoy.compose.yaml /etc/envoy/envoy.yaml
COPY gateway/descriptor.pb gateway/openapi.json /etc/envoy/
COPY gateway/docs /etc/envoy/docs

USER 101
EXPOSE 8003
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart", "--log-level", "warn"]
