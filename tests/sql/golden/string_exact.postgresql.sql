SELECT p.upd_dttm AS c0, p.race_cd AS c1, p.ethnic_cd AS c2, p.sex_birth AS c3, p.mrn AS c4, p.merged_to_seq AS c5, p.last_nm AS c6, p.first_nm AS c7, p.mid_init AS c8, p.phone_home AS c9, p.sex_cd AS c10, p.dob AS c11, p.addr_line1 AS c12, p.city AS c13, p.st_cd AS c14, p.zip_cd AS c15, p.mar_stat AS c16, survivor.pt_guid AS c17, 0 AS _b, p.pt_guid AS _id, p.pt_guid AS _k0 
FROM pt_master AS p LEFT OUTER JOIN pt_master AS survivor ON p.merged_to_seq = survivor.pt_seq 
WHERE (p.del_flg IS NULL OR NOT (p.del_flg = 'Y' AND (1 = 1))) AND p.last_nm = 'SMITH' AND (1 = 1) ORDER BY p.pt_guid ASC, p.pt_guid 
 LIMIT 21
