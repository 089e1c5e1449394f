"""Sample dumps shared by the insights tests; their figures are counted by hand in the tests."""

# A February dump small enough to count by hand. Rows 9-11 cannot be loaded.
SMALL_CSV = """timestamp,email,country,tags,plan
2024-02-01 09:00:00,jane@mail.acme.co.uk,France,promo|vip,pro
2024-02-01T10:00:00Z,Jane@Acme.co.uk ,France,promo,pro
2024-02-01T23:30:00-01:00,bob@globex.com,FR,vip| promo ,free
2024-02-02 08:00:00,ann@gmail.com,NA,,free
2024-02-02 09:00:00,,Germany,mobile,free
2024-02-02 10:00:00,bob@globex.com,France,mobile|mobile,free
2024-02-03 11:00:00,carol@,Germany,,free
2024-02-03 12:00:00,bob@globex.com,,promo,free
not a date,zed@globex.com,France,promo,free
2024-03-01 00:00:00,zed@globex.com,France,promo,free
,zed@globex.com,France,,free
"""
