//! The risk assessment of a governed project: a questionnaire whose answers
//! suggest a risk tier (`DESIGN.md` §2.1) with the reasons, and the rule that
//! a tier other than the suggestion needs a written justification.
//!
//! Each answer sets a floor on the tier; the suggestion is the highest floor,
//! and its reason names every answer that sets it. The floors follow the
//! tier table: ad-hoc use is tier 1, scheduled work tier 2, anything that
//! needs monitoring or reaches outside, regulation or money tier 3, and what
//! runs around the clock or decides about people tier 4.

use serde::{Deserialize, Serialize};

use crate::InvalidInput;
use crate::inventory::RiskTier;
use crate::text_enum::text_enum;

text_enum!(
    /// Who consumes the model's results.
    Consumers {
        InternalFew => "internal_few",
        InternalMany => "internal_many",
        External => "external",
    }
);

text_enum!(
    /// How the model must be available.
    Availability {
        AdHoc => "ad_hoc",
        Scheduled => "scheduled",
        RealTime => "real_time",
    }
);

text_enum!(
    /// The impact of a wrong result.
    Impact {
        Low => "low",
        Financial => "financial",
        Legal => "legal",
        OnPeople => "on_people",
    }
);

text_enum!(
    /// The regulation the use falls under.
    Regulation {
        NoRegulation => "none",
        SectorRules => "sector_rules",
        PersonalData => "personal_data",
    }
);

text_enum!(
    /// How long a decision taken with the model stands.
    DecisionLifetime {
        Days => "days",
        Months => "months",
        Years => "years",
    }
);

text_enum!(
    /// How much the model's results must be explained.
    Explainability {
        NotNeeded => "not_needed",
        Helpful => "helpful",
        Required => "required",
    }
);

/// The answers of a risk assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answers {
    pub consumers: Consumers,
    pub availability: Availability,
    pub impact: Impact,
    pub regulation: Regulation,
    pub decision_lifetime: DecisionLifetime,
    pub explainability: Explainability,
}

/// The tier the answers suggest, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    pub tier: u8,
    /// One sentence naming the answers that set the tier.
    pub reason: String,
}

impl Answers {
    /// Every answer with the tier it asks for at least, and its words.
    fn floors(&self) -> [(u8, String); 6] {
        let consumers = match self.consumers {
            Consumers::InternalFew => 1,
            Consumers::InternalMany => 2,
            Consumers::External => 3,
        };
        let availability = match self.availability {
            Availability::AdHoc => 1,
            Availability::Scheduled => 2,
            Availability::RealTime => 4,
        };
        let impact = match self.impact {
            Impact::Low => 1,
            Impact::Financial | Impact::Legal => 3,
            Impact::OnPeople => 4,
        };
        let regulation = match self.regulation {
            Regulation::NoRegulation => 1,
            Regulation::SectorRules | Regulation::PersonalData => 3,
        };
        let lifetime = match self.decision_lifetime {
            DecisionLifetime::Days => 1,
            DecisionLifetime::Months => 2,
            DecisionLifetime::Years => 3,
        };
        let explain = match self.explainability {
            Explainability::NotNeeded => 1,
            Explainability::Helpful => 2,
            Explainability::Required => 3,
        };
        [
            (consumers, format!("consumers: {}", self.consumers)),
            (availability, format!("availability: {}", self.availability)),
            (impact, format!("impact of an error: {}", self.impact)),
            (regulation, format!("regulation: {}", self.regulation)),
            (
                lifetime,
                format!("decision lifetime: {}", self.decision_lifetime),
            ),
            (explain, format!("explainability: {}", self.explainability)),
        ]
    }

    /// The suggested tier: the highest floor any answer sets, with the
    /// answers that set it.
    pub fn suggest(&self) -> Suggestion {
        let floors = self.floors();
        let tier = floors.iter().map(|(t, _)| *t).max().unwrap_or(1);
        let because: Vec<&str> = floors
            .iter()
            .filter(|(t, _)| *t == tier)
            .map(|(_, w)| w.as_str())
            .collect();
        Suggestion {
            tier,
            reason: format!("tier {tier} because of {}", because.join(", ")),
        }
    }
}

/// Checks the tier chosen against the suggestion: another tier needs a
/// written justification (whitespace alone is none).
pub fn check_choice(
    suggested: u8,
    chosen: RiskTier,
    justification: Option<&str>,
) -> Result<(), InvalidInput> {
    let justified = justification.is_some_and(|j| !j.trim().is_empty());
    if chosen.get() != suggested && !justified {
        return Err(InvalidInput::new(
            "justification",
            format!(
                "the assessment suggests tier {suggested}; choosing tier {} needs a written justification",
                chosen.get()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lightest() -> Answers {
        Answers {
            consumers: Consumers::InternalFew,
            availability: Availability::AdHoc,
            impact: Impact::Low,
            regulation: Regulation::NoRegulation,
            decision_lifetime: DecisionLifetime::Days,
            explainability: Explainability::NotNeeded,
        }
    }

    #[test]
    fn the_lightest_answers_suggest_tier_1() {
        let s = lightest().suggest();
        assert_eq!(s.tier, 1);
        assert!(
            s.reason
                .starts_with("tier 1 because of consumers: internal_few")
        );
    }

    #[test]
    fn each_answer_sets_its_floor() {
        let cases: Vec<(Answers, u8, &str)> = vec![
            (
                Answers {
                    consumers: Consumers::InternalMany,
                    ..lightest()
                },
                2,
                "consumers: internal_many",
            ),
            (
                Answers {
                    availability: Availability::Scheduled,
                    ..lightest()
                },
                2,
                "availability: scheduled",
            ),
            (
                Answers {
                    availability: Availability::RealTime,
                    ..lightest()
                },
                4,
                "availability: real_time",
            ),
            (
                Answers {
                    impact: Impact::Financial,
                    ..lightest()
                },
                3,
                "impact of an error: financial",
            ),
            (
                Answers {
                    impact: Impact::OnPeople,
                    ..lightest()
                },
                4,
                "impact of an error: on_people",
            ),
            (
                Answers {
                    regulation: Regulation::PersonalData,
                    ..lightest()
                },
                3,
                "regulation: personal_data",
            ),
            (
                Answers {
                    decision_lifetime: DecisionLifetime::Years,
                    ..lightest()
                },
                3,
                "decision lifetime: years",
            ),
            (
                Answers {
                    explainability: Explainability::Required,
                    ..lightest()
                },
                3,
                "explainability: required",
            ),
        ];
        for (answers, tier, why) in cases {
            let s = answers.suggest();
            assert_eq!(s.tier, tier, "{answers:?}");
            assert_eq!(s.reason, format!("tier {tier} because of {why}"));
        }
    }

    #[test]
    fn the_highest_floor_wins_and_every_answer_setting_it_is_named() {
        let a = Answers {
            consumers: Consumers::External,
            availability: Availability::Scheduled,
            impact: Impact::Legal,
            regulation: Regulation::SectorRules,
            ..lightest()
        };
        let s = a.suggest();
        assert_eq!(s.tier, 3);
        assert_eq!(
            s.reason,
            "tier 3 because of consumers: external, impact of an error: legal, regulation: sector_rules"
        );
    }

    #[test]
    fn every_combination_suggests_a_tier_between_1_and_4() {
        for c in Consumers::ALL {
            for av in Availability::ALL {
                for i in Impact::ALL {
                    for r in Regulation::ALL {
                        for d in DecisionLifetime::ALL {
                            for e in Explainability::ALL {
                                let a = Answers {
                                    consumers: *c,
                                    availability: *av,
                                    impact: *i,
                                    regulation: *r,
                                    decision_lifetime: *d,
                                    explainability: *e,
                                };
                                let s = a.suggest();
                                assert!((1..=4).contains(&s.tier));
                                assert!(RiskTier::new(i64::from(s.tier)).is_ok());
                                // Raising any answer never lowers the tier.
                                if *i == Impact::OnPeople || *av == Availability::RealTime {
                                    assert_eq!(s.tier, 4);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn another_tier_than_suggested_needs_a_justification() {
        let t = |n| RiskTier::new(n).unwrap();
        assert!(check_choice(3, t(3), None).is_ok());
        assert!(check_choice(3, t(4), None).is_err());
        assert!(check_choice(3, t(2), Some("   ")).is_err());
        assert!(check_choice(3, t(2), Some("a sandbox copy, no decisions")).is_ok());
        let e = check_choice(3, t(4), None).unwrap_err();
        assert!(e.to_string().contains("suggests tier 3"));
    }

    #[test]
    fn answers_are_written_as_words() {
        let json = serde_json::to_value(lightest()).unwrap();
        assert_eq!(json["regulation"], "none");
        assert_eq!(json["explainability"], "not_needed");
        let back: Answers = serde_json::from_value(json).unwrap();
        assert_eq!(back, lightest());
    }
}
