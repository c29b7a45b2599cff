// Starts Swagger UI on the nerforge API spec. A file of its own: the page's Content-Security-Policy runs no
// inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: false,
    validatorUrl: null,  // the default validator is a remote service
  });
});
