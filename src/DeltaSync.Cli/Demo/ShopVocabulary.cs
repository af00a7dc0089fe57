namespace DeltaSync.Cli.Demo;

/// <summary>The words the demo shop is made of. ASCII only, so generated e-mail addresses stay valid.</summary>
internal static class ShopVocabulary
{
    public static readonly string[] FirstNames =
    [
        "Ana", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kavya", "Liam", "Maya", "Noah",
        "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe",
    ];

    public static readonly string[] LastNames =
    [
        "Silva", "Becker", "Martin", "Smith", "Rossi", "Haddad", "Kim", "Tanaka", "Garcia", "Novak", "Patel", "Murphy",
        "Cohen", "Jensen", "Kowalski", "Okafor", "Dubois", "Larsen", "Moreau", "Nguyen", "Schmidt", "Costa", "Ivanova", "Lopez",
    ];

    /// <summary>Reserved example domains (RFC 2606): the demo never produces a real address.</summary>
    public static readonly string[] EmailDomains = ["example.com", "example.org", "example.net", "mail.example", "shop.example"];

    /// <summary>Countries, repeated by rough share of the shop's customers.</summary>
    public static readonly string[] Countries =
    [
        "US", "US", "US", "US", "DE", "DE", "GB", "GB", "FR", "FR", "PT", "BR", "BR", "JP", "IN", "IN", "CA", "AU", "NL", "ES", "SE", "PL",
    ];

    public static readonly string[] Adjectives =
    [
        "Classic", "Everyday", "Organic", "Vintage", "Compact", "Deluxe", "Recycled", "Handmade", "Travel", "Studio", "Nordic", "Essential",
    ];

    /// <summary>Product categories: SKU prefix, the noun in product names and a price range.</summary>
    public static readonly (string Code, string Noun, double Low, double High)[] Categories =
    [
        ("MUG", "Mug", 6, 24),
        ("TEE", "T-Shirt", 12, 39),
        ("BAG", "Tote Bag", 9, 45),
        ("NBK", "Notebook", 4, 19),
        ("LMP", "Desk Lamp", 25, 140),
        ("HDP", "Headphones", 29, 249),
        ("BTL", "Water Bottle", 8, 35),
        ("CHR", "Chair", 49, 320),
    ];
}
