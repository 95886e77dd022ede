// Starts Swagger UI on the server's own OpenAPI document. Everything it loads comes from this
// server (no CDN), so the page works offline; the online validator badge is turned off for the
// same reason.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
