/// Words whose trailing period is part of the token (CoNLL keeps `Inc.`, `Corp.`, `Mr.` whole).
/// Upper-case forms are listed too, for headlines (`ST. LOUIS`).
enum Abbreviations {
    static let always: Set<String> = {
        let words = [
            // Titles and ranks.
            "Mr", "Mrs", "Ms", "Messrs", "Mmes", "Mme", "Mlle", "Dr", "Drs", "Prof", "Sr", "Jr", "Sen", "Sens",
            "Rep", "Reps", "Gov", "Gen", "Lt", "Col", "Maj", "Capt", "Cpt", "Cmdr", "Adm", "Brig", "Sgt", "Cpl",
            "Pvt", "Rev", "Hon", "Pres", "Supt", "Insp", "Det", "Amb", "Atty", "Fr", "Sra", "Srta",
            // Companies and organisations.
            "Inc", "Corp", "Co", "Cos", "Ltd", "Bros", "Assn", "Dept", "Univ", "Intl", "Mfg",
            // Places.
            "St", "Ste", "Mt", "Ft", "Ave", "Blvd", "Rd", "Hwy",
            // Months and days.
            "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
            "Mon", "Tue", "Tues", "Wed", "Thu", "Thur", "Thurs", "Fri", "Sat",
            // U.S. states as news agencies abbreviate them.
            "Ala", "Ariz", "Ark", "Calif", "Colo", "Conn", "Del", "Fla", "Ga", "Ill", "Ind", "Kan", "Kans", "Ky",
            "La", "Md", "Mass", "Mich", "Minn", "Miss", "Mo", "Mont", "Neb", "Nev", "Okla", "Ore", "Pa", "Tenn",
            "Tex", "Va", "Vt", "Wash", "Wis", "Wisc", "Wyo",
            // Latin and other lower-case abbreviations.
            "vs", "etc", "approx", "cf", "viz", "al", "ca", "esp", "incl", "est", "vol", "vols",
        ]
        return Set(words + words.map { $0.uppercased() })
    }()

    /// Abbreviations only when a number follows (`No. 1`), since the bare word also ends sentences.
    static let beforeNumber: Set<String> = ["No", "NO", "no", "Nos", "Vol", "VOL", "pp", "p", "Art", "Fig", "fig", "Ch", "ch"]
}
