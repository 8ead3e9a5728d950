/// A share as a percentage with one decimal (0 when there is nothing to divide by), as every report shows rates.
enum Percent {
    static func of(_ part: Int, _ whole: Int) -> Double {
        whole == 0 ? 0 : (Double(part) / Double(whole) * 1000).rounded() / 10
    }
}
