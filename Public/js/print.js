// The certificate's Print button. Kept in a file: pages allow no inline script (Content-Security-Policy).
document.getElementById("print-certificate")?.addEventListener("click", () => window.print());
