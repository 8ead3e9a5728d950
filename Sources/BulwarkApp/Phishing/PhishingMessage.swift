import Foundation

extension PhishingSender {
    /// The personalised email: links point at the click tracker, the pixel at the open tracker.
    static func message(for simulation: Simulation, template: PhishingTemplate, campaign: PhishingCampaign,
                        profile: SendingProfile) throws -> MailMessage {
        let base = campaign.trackingBaseURL
        let person = TemplateRenderer.Person(firstName: simulation.firstName, lastName: simulation.lastName, email: simulation.email,
                                             position: simulation.position, department: simulation.department)
        let from = "\(template.senderName) <\(template.senderEmail)>"
        let context = TemplateRenderer.context(person: person, url: "\(base)/api/phishing/track/click/\(simulation.token)",
                                               pixelURL: "\(base)/api/phishing/track/open/\(simulation.token)", from: from)
        var html = try TemplateRenderer.render(template.html, field: "html", context: context)
        if !template.html.contains("tracking_pixel") {
            let pixel = context["tracking_pixel"] as? String ?? ""
            if let body = html.range(of: "</body>", options: .caseInsensitive) { html.insert(contentsOf: pixel, at: body.lowerBound) }
            else { html += pixel }
        }
        var headers = profile.headers
        headers["X-Bulwark-Simulation"] = simulation.id!.uuidString
        return MailMessage(
            from: MailAddress(email: template.senderEmail, name: try TemplateRenderer.render(template.senderName, field: "sender_name", context: context)),
            to: [MailAddress(email: simulation.email, name: "\(simulation.firstName) \(simulation.lastName)")],
            subject: try TemplateRenderer.render(template.subject, field: "subject", context: context),
            text: try TemplateRenderer.render(template.text, field: "text", context: context), html: html, headers: headers,
            messageID: simulation.messageID, envelopeFrom: profile.envelopeFrom)
    }
}
