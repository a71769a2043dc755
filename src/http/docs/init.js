// Starts Swagger UI on /docs over /openapi.json. Served from this origin (the page's policy
// allows no inline script). The server-rendered summary stays until Swagger UI has drawn.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  if (typeof window.SwaggerUIBundle !== "function") return;
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Nothing leaves this origin: no validator badge.
    validatorUrl: null,
    tryItOutEnabled: true,
    displayRequestDuration: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    persistAuthorization: false,
    onComplete: function () {
      var summary = document.getElementById("summary");
      if (summary) summary.hidden = true;
    },
  });
});
